import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { IDENTIFY_DELETE, PROFILE_READ_PERMISSIONS } from '../../../domain/credentials.js'
import { eraseProfile, listProfilePage, readProfile, readUserProfile, readVisitorProfile } from '../../../domain/profile-reads.js'
import { checkProfileId, checkProfilesQuery, checkVisitorId } from '../../../domain/profiles.js'
import {
  ErasureSuccess,
  ProfilePageSuccess,
  ProfileParams,
  ProfilesQuery,
  ProfileSuccess,
  VisitorParams,
  WebsiteQuery
} from '../../../schemas/profiles.js'
import { errorResponses, profileStatuses } from '../../../schemas/errors.js'
import { domainChecked } from '../../domain-validator.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by DELETE /api/v1/profiles/{profileId} when it erased a profile; counted in /metrics (undefined on other routes). */
    profileErased: boolean | undefined
  }
}

const listErrors = errorResponses(profileStatuses.list)
const readErrors = errorResponses(profileStatuses.read)
const eraseErrors = errorResponses(profileStatuses.erase)

const readAccess = { permissions: PROFILE_READ_PERMISSIONS, allowSuspended: true }
// An erasure must never be blocked, not even by a suspension.
const eraseAccess = { permissions: [IDENTIFY_DELETE], allowSuspended: true }
const common = { tags: ['profiles'], security: [{ bearerAuth: [] }] }

const profileIdParam = domainChecked({ params: (params) => ({ profileId: checkProfileId(params.profileId) }) })
const profilesQuery = domainChecked({ querystring: checkProfilesQuery })
const visitorIdParam = domainChecked({ params: (params) => ({ visitorId: checkVisitorId(params.visitorId) }) })


/** Read, list and erase what identify stored (docs/api.md#profiles); these also answer for a suspended website. */
const profileRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { profiles } = fastify.repositories
  const readAuth = fastify.authenticate(readAccess)
  const eraseAuth = fastify.authenticate(eraseAccess)
  fastify.decorateRequest('profileErased', false)

  fastify.get('/profiles/:profileId', {
    onRequest: readAuth.onRequest,
    config: { rateLimit: {} },
    validatorCompiler: profileIdParam.validatorCompiler,
    schema: {
      summary: 'Read one profile by its id',
      operationId: 'getProfile',
      ...common,
      params: ProfileParams,
      querystring: WebsiteQuery,
      response: { 200: { ...ProfileSuccess, description: 'The profile' }, ...readErrors }
    }
  }, async (request): Promise<ProfileSuccess> => {
    const profile = await readProfile(profiles, readAuth.caller(request).website.id, profileIdParam.parts(request).params.profileId)
    return { status: 'success', data: { profile } }
  })

  fastify.get('/profiles', {
    onRequest: readAuth.onRequest,
    config: { rateLimit: {} },
    validatorCompiler: profilesQuery.validatorCompiler,
    schema: {
      summary: 'Read the profile of one user, or list every profile of the website a page at a time',
      description: 'With user_id: that user\'s profile, or 404. Without: a page of profiles in id order; follow nextCursor until it is null to visit every profile exactly once, even while profiles are added or erased.',
      operationId: 'listProfiles',
      ...common,
      querystring: ProfilesQuery,
      response: {
        200: { anyOf: [ProfileSuccess, ProfilePageSuccess], description: 'The user\'s profile (with user_id), or a page of profiles' },
        ...listErrors
      }
    }
  }, async (request): Promise<ProfileSuccess | ProfilePageSuccess> => {
    const websiteId = readAuth.caller(request).website.id
    const query = profilesQuery.parts(request).querystring
    if (query.kind === 'user') return { status: 'success', data: { profile: await readUserProfile(profiles, websiteId, query.userId) } }
    return { status: 'success', data: await listProfilePage(profiles, websiteId, query) }
  })

  fastify.get('/visitors/:visitorId/profile', {
    onRequest: readAuth.onRequest,
    config: { rateLimit: {} },
    validatorCompiler: visitorIdParam.validatorCompiler,
    schema: {
      summary: 'Read the profile a visitor is linked to',
      operationId: 'getVisitorProfile',
      ...common,
      params: VisitorParams,
      querystring: WebsiteQuery,
      response: { 200: { ...ProfileSuccess, description: 'The profile the visitor is linked to' }, ...readErrors }
    }
  }, async (request): Promise<ProfileSuccess> => {
    const profile = await readVisitorProfile(profiles, readAuth.caller(request).website.id, visitorIdParam.parts(request).params.visitorId)
    return { status: 'success', data: { profile } }
  })

  fastify.delete('/profiles/:profileId', {
    onRequest: eraseAuth.onRequest,
    config: { rateLimit: {} },
    validatorCompiler: profileIdParam.validatorCompiler,
    schema: {
      summary: 'Erase a profile and every visitor link to it',
      operationId: 'eraseProfile',
      ...common,
      params: ProfileParams,
      querystring: WebsiteQuery,
      response: { 200: { ...ErasureSuccess, description: 'The profile and its visitor links are erased' }, ...eraseErrors }
    }
  }, async (request): Promise<ErasureSuccess> => {
    const { website, credential } = eraseAuth.caller(request)
    const erasure = await eraseProfile(profiles, website.id, profileIdParam.parts(request).params.profileId)
    request.profileErased = true
    // The record an operator shows for a request: who asked, where, what; never the user id or the metadata.
    request.log.info({ credential, websiteId: website.id, profileId: erasure.profileId, visitorLinks: erasure.visitorLinks }, 'profile erased')
    return { status: 'success', data: { profileId: erasure.profileId, erased: true, visitorLinks: erasure.visitorLinks } }
  })
}

export default profileRoutes
