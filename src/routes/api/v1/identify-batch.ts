import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { identifyRules } from '../../../config.js'
import { IDENTIFY_WRITE } from '../../../domain/credentials.js'
import { checkBatchEnvelope, identifyBatch } from '../../../domain/identify-batch.js'
import { identifyBatchBodySchema, IdentifyBatchSuccess } from '../../../schemas/identify-batch.js'
import { IdentifyQuery } from '../../../schemas/identify.js'
import { callDeadline } from '../../call-deadline.js'
import { domainValidator } from '../../domain-validator.js'
import { errorResponses } from './identify.js'

const errorCases: Record<number, string> = {
  400: 'The body is not an object holding only an items array of 1 to BATCH_MAX_ITEMS entries, websiteId is invalid, or a dft_ token came without websiteId; nothing is stored (a bad item is reported in its result instead)',
  401: 'No, a malformed, an unknown, a revoked or an expired key or token',
  403: 'The key belongs to another website, the token lacks identify:write or the website, or tracking is suspended',
  404: 'With a dft_ token: the website does not exist or belongs to another account',
  413: 'The body is larger than BATCH_BODY_LIMIT_BYTES (5 MiB by default)',
  415: 'The body is not application/json',
  429: 'Too many calls for this key or token (a batch counts as one call), or too many failed authentications from this address',
  500: 'An unexpected error; no detail is shown',
  503: 'The database is unreachable, the service is overloaded, or the call passed BATCH_CALL_DEADLINE_MS; see Retry-After. Sending the same batch again is safe'
}

const identifyBatchRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { profiles } = fastify.repositories
  const rules = identifyRules(fastify.config)
  const maxItems = fastify.config.BATCH_MAX_ITEMS

  fastify.post('/identify/batch', {
    onRequest: fastify.authenticate({ permissions: [IDENTIFY_WRITE], allowSuspended: false }),
    config: { rateLimit: {} },
    bodyLimit: fastify.config.BATCH_BODY_LIMIT_BYTES,
    // Its own deadline: a batch of 1,000 items takes seconds, far more than one identify call.
    ...callDeadline(fastify.config.BATCH_CALL_DEADLINE_MS),
    // The envelope is checked here (a 400 for the whole call); each item by identifyBatch, as a single identify body.
    validatorCompiler: domainValidator({ body: (body) => checkBatchEnvelope(body, maxItems) }),
    schema: {
      summary: 'Identify up to BATCH_MAX_ITEMS users in one call, as if each item were sent to identify in order',
      operationId: 'identifyBatch',
      tags: ['identify'],
      security: [{ bearerAuth: [] }],
      querystring: IdentifyQuery,
      body: identifyBatchBodySchema(rules, maxItems),
      response: { 200: { ...IdentifyBatchSuccess, description: 'One result per item, in order, and the count of each outcome' }, ...errorResponses(errorCases) }
    }
  }, async (request) => {
    const { items } = request.body
    const { website } = request.caller
    const data = await identifyBatch(profiles, { websiteId: website.id, cookieless: website.cookieless, items }, rules)
    return { status: 'success' as const, data }
  })
}

export default identifyBatchRoutes
