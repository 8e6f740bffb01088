import type { TSchema } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { checkId } from '../../../../domain/account-rules.js'
import { IdParams, type AdminAction } from '../../../../schemas/admin.js'
import { domainValidator } from '../../../domain-validator.js'
import { errorResponses } from '../identify.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set on Account API routes: names the call in its log line and in /metrics. */
    adminAction?: AdminAction
  }
}

/** The errors every Account API route can answer; routes add their own. */
const commonErrors: Record<number, string> = {
  401: 'No, a malformed, an unknown, a revoked or an expired token',
  403: 'A df_ website key, or a token without the permission this route needs',
  429: 'Too many calls for this token, or too many failed authentications from this address',
  500: 'An unexpected error; no detail is shown',
  503: 'The database is unreachable or the service is overloaded; see Retry-After'
}
const badId = 'The id in the path is not 24 hexadecimal characters'
const unseen = 'The id is unknown, of another account, or outside the token\'s websites: the same answer for all three'

interface AdminRouteOptions<Success extends Record<number, TSchema>, Body extends TSchema> {
  permission: string
  action: AdminAction
  operationId: string
  summary: string
  description: string
  /** Whether the path holds an {id}. */
  byId: boolean
  body?: { schema: Body, check: (body: unknown) => unknown }
  success: Success
  errors?: Record<number, string>
}

/**
 * Everything an Account API route shares: authentication by a dft_ token
 * holding the permission, the per-token rate limit, the name of the call,
 * validation by the domain's checks, and its OpenAPI description with the
 * permission first, under the admin tag.
 */
export function adminRoute<Success extends Record<number, TSchema>, Body extends TSchema = TSchema> (
  fastify: FastifyInstance,
  options: AdminRouteOptions<Success, Body>
) {
  const errors = { ...commonErrors, ...options.errors }
  if (options.body !== undefined) {
    errors[413] = 'The body is larger than the body limit (64 KiB by default)'
    errors[415] = 'The body is not application/json'
  }
  if (options.byId) {
    errors[400] = options.body === undefined ? badId : `${badId}, or the body breaks a rule (the message names it)`
    errors[404] = unseen
  }
  return {
    onRequest: fastify.authenticateAccount(options.permission),
    config: { rateLimit: {}, adminAction: options.action },
    // Path ids and bodies are checked by the domain, as the command line checks them.
    validatorCompiler: domainValidator({ params: (data) => ({ id: checkId((data as { id?: unknown }).id) }), ...(options.body === undefined ? {} : { body: options.body.check }) }),
    schema: {
      summary: options.summary,
      description: `Permission: \`${options.permission}\` (or \`*\`), on a dft_ account token. ${options.description}`,
      operationId: options.operationId,
      tags: ['admin'],
      security: [{ bearerAuth: [] }],
      ...(options.byId ? { params: IdParams } : {}),
      ...(options.body === undefined ? {} : { body: options.body.schema }),
      // Typed as the success answers only: handlers return those, and throw the errors.
      response: { ...errorResponses(errors), ...options.success } as Success
    }
  }
}
