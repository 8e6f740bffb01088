import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { trace } from '@opentelemetry/api'
import type { FastifyBaseLogger } from 'fastify'
import fp from 'fastify-plugin'
import type { Logger } from 'pino'

const safeRequestId = /^[A-Za-z0-9._:-]{1,128}$/

/** The caller's X-Request-Id when it is a plain token (no log injection), else a new UUID. */
export function requestIdOf (request: IncomingMessage): string {
  const sent = request.headers['x-request-id']
  return typeof sent === 'string' && safeRequestId.test(sent) ? sent : randomUUID()
}

/** One log line per request, with nothing a caller sent (docs/security.md#what-reaches-the-logs); the id is echoed for callers to quote. */
export default fp(async (fastify) => {
  fastify.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
    // @fastify/otel's onRequest hook runs first and leaves the request span active here; without tracing there is none.
    const span = trace.getActiveSpan()
    if (span !== undefined) {
      const { traceId, spanId } = span.spanContext()
      // Fastify gives each request a pino logger of its own, whose type leaves setBindings out; a child logger per request would cost more.
      const log = request.log as FastifyBaseLogger & Pick<Logger, 'setBindings'>
      log.setBindings({ trace_id: traceId, span_id: spanId })
    }
  })
  fastify.addHook('onResponse', async (request, reply) => {
    request.log.info({
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      status: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 10) / 10,
      websiteId: request.caller?.website.id,
      action: request.identifyAction ?? undefined
    }, 'request')
  })
}, { name: 'request-log' })
