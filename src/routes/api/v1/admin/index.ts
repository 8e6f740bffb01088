import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AccountAdmin } from '../../../../domain/account-admin.js'
import { canonicalObjectId } from '../../../../domain/ids.js'
import accessTokensRoutes from './access-tokens.js'
import apiKeysRoutes from './api-keys.js'
import websitesRoutes from './websites.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The id an Account API call created (null elsewhere): its log line names it. */
    adminTargetId: string | null
  }
}

/** The Account API (docs/api.md#account-api); one log line a call: token id, action, id, outcome, never a secret. */
const adminRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const admin = new AccountAdmin(fastify.repositories, fastify.config.MAX_TOKENS_PER_ACCOUNT)
  fastify.decorateRequest('adminTargetId', null)

  fastify.addHook('onResponse', async (request, reply) => {
    const caller = request.accountCaller
    const { id } = request.params as { id?: unknown }
    request.log.info({
      admin: {
        action: request.routeOptions.config.adminAction,
        accountId: caller?.accountId,
        credentialId: caller?.credential.id,
        // Only a well-formed id: anything else a caller sent stays out of the logs.
        targetId: request.adminTargetId ?? (typeof id === 'string' ? canonicalObjectId(id) : null) ?? undefined,
        status: reply.statusCode
      }
    }, 'admin call')
  })

  await fastify.register(websitesRoutes, { admin })
  await fastify.register(apiKeysRoutes, { admin })
  await fastify.register(accessTokensRoutes, { admin })
}

export default adminRoutes
