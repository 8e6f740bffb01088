import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { AccountAdmin } from '../../../../domain/account-admin.js'
import { checkAccessTokenInput } from '../../../../domain/account-rules.js'
import { AccessTokenCreateBody, AccessTokenCreated, AccessTokenList, AccessTokenOne } from '../../../../schemas/admin.js'
import { adminStatuses } from '../../../../schemas/errors.js'
import { adminRoute } from './route-options.js'

const accessTokensRoutes: FastifyPluginAsyncTypebox<{ admin: AccountAdmin }> = async (fastify, { admin }) => {
  fastify.get('/access-tokens', adminRoute(fastify, {
    permission: 'api-keys:read',
    action: 'access-tokens.list',
    operationId: 'listAccessTokens',
    summary: 'List the dft_ tokens of the token\'s account',
    description: 'Revoked and expired tokens included, oldest first; never a secret or a hash. ' +
      'A token limited to some websites sees only the tokens limited to some of those.',
    byId: false,
    success: { 200: { ...AccessTokenList, description: 'The tokens' } }
  }, async (_request, _reply, { actor }) => {
    return { status: 'success' as const, data: { accessTokens: await admin.listAccessTokens(actor) } }
  }))

  fastify.post('/access-tokens', adminRoute(fastify, {
    permission: 'api-keys:write',
    action: 'access-tokens.create',
    operationId: 'createAccessToken',
    summary: 'Create a dft_ token for the token\'s account',
    description: 'Never wider than the calling token: each permission held by it, websiteIds inside its website list, ' +
      'expiresAt no later than its own. The answer holds the token itself, shown this once: store it now.',
    byId: false,
    body: { schema: AccessTokenCreateBody, check: (body) => checkAccessTokenInput(body) },
    success: { 201: { ...AccessTokenCreated, description: 'The new token, with its secret' } },
    errors: adminStatuses.createAccessToken
  }, async (request, reply, { actor, body }) => {
    const created = await admin.createAccessToken(actor, body)
    request.adminTargetId = created.accessToken.id
    return await reply.code(201).send({ status: 'success' as const, data: created })
  }))

  fastify.delete('/access-tokens/:id', adminRoute(fastify, {
    permission: 'api-keys:write',
    action: 'access-tokens.revoke',
    operationId: 'revokeAccessToken',
    summary: 'Revoke a dft_ token',
    description: 'A token may revoke itself. The token stops working at once on the instance that served the call, ' +
      'and within AUTH_CACHE_TTL_MS on the others. Revoking a revoked token answers it with its first revokedAt.',
    byId: true,
    success: { 200: { ...AccessTokenOne, description: 'The token, with revokedAt set' } }
  }, async (_request, _reply, { actor, id }) => {
    const accessToken = await admin.revokeAccessToken(actor, id)
    await fastify.invalidateCredential({ kind: 'accountToken', id })
    return { status: 'success' as const, data: { accessToken } }
  }))
}

export default accessTokensRoutes
