import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import { ApiError } from '../../errors.js'
import { credentialOf } from '../app/auth.js'

/**
 * Per key or token budgets for the routes that opt in with
 * `config: { rateLimit: {} }`. It runs at preParsing, after authentication
 * has resolved the caller, so the budget belongs to the credential rather
 * than to an address that many callers may share.
 */
export default fp(async (fastify) => {
  await fastify.register(rateLimit, {
    global: false,
    max: fastify.config.RATE_LIMIT_MAX,
    timeWindow: fastify.config.RATE_LIMIT_WINDOW_MS,
    hook: 'preParsing',
    enableDraftSpec: true,
    keyGenerator: (request) => credentialOf(request)?.id ?? request.ip,
    errorResponseBuilder: (_request, context) =>
      new ApiError(429, `Rate limit exceeded: at most ${context.max} calls per ${context.after}`)
  })
}, { name: 'rate-limit', dependencies: ['auth'] })
