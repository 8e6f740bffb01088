import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { checkMetadata } from '../../../domain/metadata.js'
import { ApiError } from '../../../errors.js'
import { ErrorEnvelope } from '../../../schemas/errors.js'
import { IdentifyBody, IdentifyQuery, IdentifySuccess, type IdentifyAction } from '../../../schemas/identify.js'

const messages: Record<IdentifyAction, string> = {
  created: 'User profile created successfully',
  updated: 'User profile updated successfully',
  unchanged: 'User profile unchanged',
  skipped: 'Identify skipped: the website uses cookieless tracking'
}

const errorResponses = Object.fromEntries(
  [400, 401, 403, 404, 413, 415, 429, 500, 503].map((code) => [code, ErrorEnvelope])
)

const identifyRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { profiles } = fastify.repositories
  const { METADATA_MAX_FIELDS, METADATA_MAX_BYTES, METADATA_MAX_DEPTH, PROFILE_MAX_FIELDS } = fastify.config
  const limits = {
    maxFields: METADATA_MAX_FIELDS,
    maxBytes: METADATA_MAX_BYTES,
    maxDepth: METADATA_MAX_DEPTH,
    profileMaxFields: PROFILE_MAX_FIELDS
  }

  fastify.post('/identify', {
    onRequest: fastify.authenticate,
    config: { rateLimit: {} },
    schema: {
      summary: 'Link a visitor to a known user and store the user\'s profile metadata',
      operationId: 'identify',
      tags: ['identify'],
      security: [{ bearerAuth: [] }],
      querystring: IdentifyQuery,
      body: IdentifyBody,
      response: { 200: IdentifySuccess, ...errorResponses }
    }
  }, async (request) => {
    const caller = request.caller
    if (caller === null) throw new ApiError(500, 'Internal server error')
    const { user_id: userId, datafast_visitor_id: visitorId, ...metadata } = request.body
    const fields = checkMetadata(metadata, limits)

    if (caller.website.cookieless) return success(request, 'skipped', null)

    const result = await profiles.upsertProfile({
      websiteId: caller.website.id,
      userId,
      visitorId: visitorId.toLowerCase(),
      metadata: fields,
      profileMaxFields: limits.profileMaxFields
    })
    const action: IdentifyAction = result.created ? 'created' : result.changed ? 'updated' : 'unchanged'
    return success(request, action, result.profileId)
  })

  fastify.route({
    method: ['GET', 'PUT', 'PATCH', 'DELETE'],
    url: '/identify',
    schema: { hide: true },
    handler: async (_request, reply) => {
      reply.header('allow', 'POST')
      throw new ApiError(405, 'Method not allowed: use POST /api/v1/identify')
    }
  })
}

function success (request: FastifyRequest, action: IdentifyAction, profileId: string | null): IdentifySuccess {
  request.identifyAction = action
  return { status: 'success', data: { message: messages[action], profileId, action } }
}

export default identifyRoutes
