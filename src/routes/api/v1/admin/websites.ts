import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { AccountAdmin } from '../../../../domain/account-admin.js'
import { checkWebsiteChanges, checkWebsiteInput } from '../../../../domain/account-rules.js'
import { WebsiteCreateBody, WebsiteList, WebsiteOne, WebsitePatchBody } from '../../../../schemas/admin.js'
import { adminStatuses } from '../../../../schemas/errors.js'
import { adminRoute } from './route-options.js'

const websitesRoutes: FastifyPluginAsyncTypebox<{ admin: AccountAdmin }> = async (fastify, { admin }) => {
  fastify.get('/websites', adminRoute(fastify, {
    permission: 'websites:read',
    action: 'websites.list',
    operationId: 'listWebsites',
    summary: 'List the websites of the token\'s account',
    description: 'Only those the token may act on: every website of the account, or those of its website list.',
    byId: false,
    success: { 200: { ...WebsiteList, description: 'The websites, oldest first' } }
  }, async (_request, _reply, { actor }) => {
    return { status: 'success' as const, data: { websites: await admin.listWebsites(actor) } }
  }))

  fastify.post('/websites', adminRoute(fastify, {
    permission: 'websites:write',
    action: 'websites.create',
    operationId: 'createWebsite',
    summary: 'Add a website to the token\'s account',
    description: 'Only a token for every website of its account (an empty website list) may add one.',
    byId: false,
    body: { schema: WebsiteCreateBody, check: checkWebsiteInput },
    success: { 201: { ...WebsiteOne, description: 'The new website' } },
    errors: adminStatuses.createWebsite
  }, async (request, reply, { actor, body }) => {
    const website = await admin.createWebsite(actor, body)
    request.adminTargetId = website.id
    return await reply.code(201).send({ status: 'success' as const, data: { website } })
  }))

  fastify.patch('/websites/:id', adminRoute(fastify, {
    permission: 'websites:write',
    action: 'websites.update',
    operationId: 'updateWebsite',
    summary: 'Suspend or resume a website, or change its domain or cookieless mode',
    description: 'Send any of suspended, cookieless and domain. A suspension takes effect at once on the instance that served it, ' +
      'and within AUTH_CACHE_TTL_MS on the others.',
    byId: true,
    body: { schema: WebsitePatchBody, check: checkWebsiteChanges },
    success: { 200: { ...WebsiteOne, description: 'The website as changed' } }
  }, async (_request, _reply, { actor, id, body }) => {
    const website = await admin.updateWebsite(actor, id, body)
    await fastify.invalidateCredential({ kind: 'website', id })
    return { status: 'success' as const, data: { website } }
  }))
}

export default websitesRoutes
