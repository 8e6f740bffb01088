import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { AccountAdmin } from '../../../../domain/account-admin.js'
import { checkApiKeyInput } from '../../../../domain/account-rules.js'
import { ApiKeyCreateBody, ApiKeyCreated, ApiKeyList, ApiKeyOne } from '../../../../schemas/admin.js'
import { adminRoute } from './route-options.js'

const apiKeysRoutes: FastifyPluginAsyncTypebox<{ admin: AccountAdmin }> = async (fastify, { admin }) => {
  fastify.get('/websites/:id/api-keys', adminRoute(fastify, {
    permission: 'api-keys:read',
    action: 'api-keys.list',
    operationId: 'listApiKeys',
    summary: 'List the df_ keys of a website',
    description: 'Revoked keys included, oldest first. A key\'s secret is never shown again after its creation, nor its hash.',
    byId: true,
    success: { 200: { ...ApiKeyList, description: 'The website\'s keys' } }
  }, async (_request, _reply, { actor, id }) => {
    return { status: 'success' as const, data: { apiKeys: await admin.listApiKeys(actor, id) } }
  }))

  fastify.post('/websites/:id/api-keys', adminRoute(fastify, {
    permission: 'api-keys:write',
    action: 'api-keys.create',
    operationId: 'createApiKey',
    summary: 'Create a df_ key for a website',
    description: 'The answer holds the key itself, shown this once: store it now. Send {} for a key without a name.',
    byId: true,
    body: { schema: ApiKeyCreateBody, check: checkApiKeyInput },
    success: { 201: { ...ApiKeyCreated, description: 'The new key, with its secret' } }
  }, async (request, reply, { actor, id, body }) => {
    const created = await admin.createApiKey(actor, id, body)
    request.adminTargetId = created.apiKey.id
    return await reply.code(201).send({ status: 'success' as const, data: created })
  }))

  fastify.delete('/api-keys/:id', adminRoute(fastify, {
    permission: 'api-keys:write',
    action: 'api-keys.revoke',
    operationId: 'revokeApiKey',
    summary: 'Revoke a df_ key',
    description: 'The key stops working at once on the instance that served the call, and within AUTH_CACHE_TTL_MS on the others. ' +
      'Revoking a revoked key answers it with its first revokedAt.',
    byId: true,
    success: { 200: { ...ApiKeyOne, description: 'The key, with revokedAt set' } }
  }, async (_request, _reply, { actor, id }) => {
    const apiKey = await admin.revokeApiKey(actor, id)
    await fastify.invalidateCredential({ kind: 'websiteKey', id })
    return { status: 'success' as const, data: { apiKey } }
  }))
}

export default apiKeysRoutes
