import type { Static, TSchema } from '@sinclair/typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { tokenActor, type Actor } from '../../../../domain/account-admin.js'
import { checkId } from '../../../../domain/account-rules.js'
import { IdParams, type AdminAction } from '../../../../schemas/admin.js'
import { domainChecked } from '../../../domain-validator.js'
import { adminStatuses, errorResponses } from '../../../../schemas/errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set on Account API routes: names the call in its log line and in /metrics. */
    adminAction?: AdminAction
  }
}

/** What a handler is given: the token's actor, the checked {id} of the path ('' when it has none) and the checked body. */
interface AdminParts<Input> { actor: Actor, id: string, body: Input }
type AdminHandler<Success extends Record<number, TSchema>, Input> =
  (request: FastifyRequest, reply: FastifyReply, parts: AdminParts<Input>) => Promise<Static<Success[number & keyof Success]> | FastifyReply>

interface AdminRouteOptions<Success extends Record<number, TSchema>, Body extends TSchema, Input> {
  permission: string
  action: AdminAction
  operationId: string
  summary: string
  description: string
  byId: boolean
  body?: { schema: Body, check: (body: unknown) => Input }
  success: Success
  errors?: Record<number, string>
}

/** What every Account API route shares: dft_ authentication, per-token rate limit, call name, domain checks, OpenAPI text. */
export function adminRoute<Success extends Record<number, TSchema>, Body extends TSchema = TSchema, Input = undefined> (
  fastify: FastifyInstance,
  options: AdminRouteOptions<Success, Body, Input>,
  handler: AdminHandler<Success, Input>
) {
  const errors: Record<number, string> = { ...adminStatuses.common, ...options.errors }
  if (options.body !== undefined) Object.assign(errors, adminStatuses.body)
  if (options.byId) Object.assign(errors, adminStatuses.byId(options.body !== undefined))
  // Path ids and bodies are checked by the domain, as the command line checks them.
  const auth = fastify.authenticateAccount(options.permission)
  const checked = domainChecked({ params: (params) => ({ id: checkId(params.id) }), body: options.body?.check ?? ((): undefined => undefined) })
  return {
    onRequest: auth.onRequest,
    config: { rateLimit: {}, adminAction: options.action },
    validatorCompiler: checked.validatorCompiler,
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
    },
    handler: async (request: FastifyRequest, reply: FastifyReply) => {
      const { params, body } = checked.parts(request)
      // The body check's result; a route without one reads no body.
      const actor = tokenActor(auth.caller(request).token)
      return await handler(request, reply, { actor, id: options.byId ? params.id : '', body: body as Input })
    }
  }
}
