import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import fp from 'fastify-plugin'
import type { WebsiteCaller } from '../../domain/credential-resolver.js'

const safeRequestId = /^[A-Za-z0-9._:-]{1,128}$/

/** The caller's X-Request-Id when it is a plain token (no log injection), else a new UUID. */
export function requestIdOf (request: IncomingMessage): string {
  const sent = request.headers['x-request-id']
  return typeof sent === 'string' && safeRequestId.test(sent) ? sent : randomUUID()
}

/**
 * One log line per request, with what an operator needs and nothing a
 * caller sent: no headers (so no Authorization), no body, no metadata. The
 * request id is echoed so that callers can quote it.
 */
export default fp(async (fastify) => {
  fastify.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })
  fastify.addHook('onResponse', async (request, reply) => {
    request.log.info({
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      status: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 10) / 10,
      // Null on routes without website authentication.
      websiteId: (request.caller as WebsiteCaller | null)?.website.id,
      action: request.identifyAction ?? undefined
    }, 'request')
  })
}, { name: 'request-log' })
