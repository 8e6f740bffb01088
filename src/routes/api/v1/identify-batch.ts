import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { identifyRules } from '../../../config.js'
import { IDENTIFY_WRITE } from '../../../domain/credentials.js'
import { checkBatchEnvelope, identifyBatch } from '../../../domain/identify-batch.js'
import { identifyBatchBodySchema, IdentifyBatchSuccess } from '../../../schemas/identify-batch.js'
import { IdentifyQuery } from '../../../schemas/identify.js'
import { domainChecked } from '../../domain-validator.js'
import { errorResponses, identifyBatchStatuses } from '../../../schemas/errors.js'

const identifyBatchRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { profiles } = fastify.repositories
  const rules = identifyRules(fastify.config)
  const maxItems = fastify.config.BATCH_MAX_ITEMS
  const auth = fastify.authenticate({ permissions: [IDENTIFY_WRITE], allowSuspended: false })
  const checked = domainChecked({ body: (body) => checkBatchEnvelope(body, maxItems) })

  fastify.post('/identify/batch', {
    onRequest: auth.onRequest,
    // Its own deadline: a batch of 1,000 items takes seconds, far more than one identify call.
    config: { rateLimit: {}, callDeadlineMs: fastify.config.BATCH_CALL_DEADLINE_MS },
    bodyLimit: fastify.config.BATCH_BODY_LIMIT_BYTES,
    // The envelope is checked here (a 400 for the whole call); each item by identifyBatch, as a single identify body.
    validatorCompiler: checked.validatorCompiler,
    schema: {
      summary: 'Identify up to BATCH_MAX_ITEMS users in one call, as if each item were sent to identify in order',
      operationId: 'identifyBatch',
      tags: ['identify'],
      security: [{ bearerAuth: [] }],
      querystring: IdentifyQuery,
      body: identifyBatchBodySchema(rules, maxItems),
      response: { 200: { ...IdentifyBatchSuccess, description: 'One result per item, in order, and the count of each outcome' }, ...errorResponses(identifyBatchStatuses) }
    }
  }, async (request) => {
    const { items } = checked.parts(request).body
    const { website } = auth.caller(request)
    const data = await identifyBatch(profiles, { websiteId: website.id, cookieless: website.cookieless, items }, rules)
    return { status: 'success' as const, data }
  })
}

export default identifyBatchRoutes
