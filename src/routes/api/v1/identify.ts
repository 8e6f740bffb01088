import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest, FastifySchemaValidationError } from 'fastify'

type InvalidRequest = Error & { validation: FastifySchemaValidationError[], validationContext: string }
import { checkMetadata, isStorableString, type Metadata, type MetadataLimits } from '../../../domain/metadata.js'
import { metadataLimits } from '../../../config.js'
import { ApiError, badRequest } from '../../../errors.js'
import { ErrorEnvelope } from '../../../schemas/errors.js'
import { fieldRules, identifyBodySchema, IdentifyQuery, IdentifySuccess, type IdentifyAction } from '../../../schemas/identify.js'

const messages: Record<IdentifyAction, string> = {
  created: 'User profile created successfully',
  updated: 'User profile updated successfully',
  unchanged: 'User profile unchanged',
  skipped: 'Identify skipped: the website uses cookieless tracking'
}

const errorCases: Record<number, string> = {
  400: 'The body, a metadata rule or websiteId is invalid, or a dft_ token came without websiteId',
  401: 'No, a malformed, an unknown, a revoked or an expired key or token',
  403: 'The key belongs to another website, the token lacks identify:write or the website, or tracking is suspended',
  404: 'With a dft_ token: the website does not exist or belongs to another account',
  413: 'The body is larger than the body limit (64 KiB by default)',
  415: 'The body is not application/json',
  429: 'Too many calls for this key or token, or too many failed authentications from this address',
  500: 'An unexpected error; no detail is shown',
  503: 'The database is unreachable or the service is overloaded; see Retry-After'
}

const errorResponses = Object.fromEntries(
  Object.entries(errorCases).map(([code, description]) => [code, { ...ErrorEnvelope, description }])
)

const identifyRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { profiles } = fastify.repositories
  const limits = metadataLimits(fastify.config)

  fastify.post('/identify', {
    onRequest: fastify.authenticate,
    config: { rateLimit: {} },
    attachValidation: true,
    schema: {
      summary: 'Link a visitor to a known user and store the user\'s profile metadata',
      operationId: 'identify',
      tags: ['identify'],
      security: [{ bearerAuth: [] }],
      querystring: IdentifyQuery,
      body: identifyBodySchema(limits),
      response: { 200: { ...IdentifySuccess, description: 'The profile was created, updated, left unchanged, or skipped for a cookieless website' }, ...errorResponses }
    }
  }, async (request) => {
    if (request.validationError !== undefined) throw explainInvalidBody(request.validationError, request.body, limits)
    const caller = request.caller
    if (caller === null) throw new ApiError(500, 'Internal server error')
    const { user_id: userId, datafast_visitor_id: visitorId, ...metadata } = request.body
    if (!isStorableString(userId)) throw badRequest(fieldRules.user_id)
    const fields = checkMetadata(metadata, limits)

    if (caller.website.cookieless) return success(request, 'skipped', null)

    const result = await profiles.upsertProfile({
      websiteId: caller.website.id,
      userId,
      visitorId: visitorId.toLowerCase(),
      metadata: fields,
      limits
    })
    const action: IdentifyAction = result.created ? 'created' : result.changed ? 'updated' : 'unchanged'
    return success(request, action, result.profileId)
  })
}

/**
 * The schema states the metadata rules for clients; the domain check names
 * the rule that was broken, so a metadata failure gets the domain's message.
 */
function explainInvalidBody (error: InvalidRequest, body: unknown, limits: MetadataLimits): Error {
  const field = error.validation[0]?.instancePath.split('/')[1]
  const isMetadata = error.validationContext === 'body' && typeof body === 'object' && body !== null && !Array.isArray(body) &&
    !(field === 'user_id' || field === 'datafast_visitor_id')
  if (isMetadata) {
    const { user_id: _userId, datafast_visitor_id: _visitorId, ...metadata } = body as Metadata
    checkMetadata(metadata, limits)
  }
  return error
}

function success (request: FastifyRequest, action: IdentifyAction, profileId: string | null): IdentifySuccess {
  request.identifyAction = action
  return { status: 'success', data: { message: messages[action], profileId, action } }
}

export default identifyRoutes
