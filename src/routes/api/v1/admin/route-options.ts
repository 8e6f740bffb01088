import type { TSchema } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { checkId } from '../../../../domain/account-rules.js'
import { IdParams, type AdminAction } from '../../../../schemas/admin.js'
import { domainValidator } from '../../../domain-validator.js'
import { adminStatuses, errorResponses } from '../../../../schemas/error-statuses.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set on Account API routes: names the call in its log line and in /metrics. */
    adminAction?: AdminAction
  }
}

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
  const errors = {
    ...adminStatuses.common,
    ...options.errors,
    ...(options.body === undefined ? {} : adminStatuses.body),
    ...(options.byId ? adminStatuses.byId(options.body !== undefined) : {})
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
