import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { identifyRules } from '../../../config.js'
import { IDENTIFY_WRITE } from '../../../domain/credentials.js'
import { checkIdentifyBody, identify } from '../../../domain/identify.js'
import { errorResponses, identifyStatuses } from '../../../schemas/errors.js'
import { domainChecked } from '../../domain-validator.js'
import { identifyBodySchema, IdentifyQuery, IdentifySuccess, type IdentifyAction } from '../../../schemas/identify.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the identify route once it knows the outcome; logged and counted (undefined on other routes). */
    identifyAction: IdentifyAction | null | undefined
  }
}

const messages: Record<IdentifyAction, string> = {
  created: 'User profile created successfully',
  updated: 'User profile updated successfully',
  unchanged: 'User profile unchanged',
  skipped: 'Identify skipped: the website uses cookieless tracking'
}

const profileLinks = {
  getProfile: { operationId: 'getProfile', parameters: { profileId: '$response.body#/data/profileId' }, description: 'The profile this call created or updated' },
  getUserProfile: { operationId: 'listProfiles', parameters: { user_id: '$request.body#/user_id' }, description: 'The same profile, by user_id' },
  getVisitorProfile: { operationId: 'getVisitorProfile', parameters: { visitorId: '$request.body#/datafast_visitor_id' }, description: 'The profile the visitor is now linked to' },
  eraseProfile: { operationId: 'eraseProfile', parameters: { profileId: '$response.body#/data/profileId' }, description: 'Erase the profile' }
}

const identifyRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { profiles } = fastify.repositories
  const rules = identifyRules(fastify.config)
  const auth = fastify.authenticate({ permissions: [IDENTIFY_WRITE], allowSuspended: false })
  const checked = domainChecked({ body: (body) => checkIdentifyBody(body, rules) })
  fastify.decorateRequest('identifyAction', null)

  fastify.post('/identify', {
    onRequest: auth.onRequest,
    config: { rateLimit: {}, callDeadlineMs: fastify.config.CALL_DEADLINE_MS },
    validatorCompiler: checked.validatorCompiler,
    // What a call stored can be read and erased: the links lead a fuzzer (and a reader) from identify to the profile routes.
    links: { 200: profileLinks },
    schema: {
      summary: 'Link a visitor to a known user and store the user\'s profile metadata',
      operationId: 'identify',
      tags: ['identify'],
      security: [{ bearerAuth: [] }],
      querystring: IdentifyQuery,
      body: identifyBodySchema(rules),
      response: { 200: { ...IdentifySuccess, description: 'The profile was created, updated, left unchanged, or skipped for a cookieless website' }, ...errorResponses(identifyStatuses) }
    }
  }, async (request): Promise<IdentifySuccess> => {
    const { action, profileId } = await identify(profiles, auth.caller(request).website, checked.parts(request).body, rules)
    request.identifyAction = action
    return { status: 'success', data: { message: messages[action], profileId, action } }
  })
}

export default identifyRoutes
