import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { trace, type SpanContext } from '@opentelemetry/api'
import type { FastifyBaseLogger } from 'fastify'
import fp from 'fastify-plugin'
import { routeLabel } from '../../routes/route-label.js'
import { tracingStarted } from '../../tracing/start.js'

const safeRequestId = /^[A-Za-z0-9._:-]{1,128}$/

/** The caller's X-Request-Id when it is a plain token (no log injection), else a new UUID. */
export function requestIdOf (request: IncomingMessage): string {
  const sent = request.headers['x-request-id']
  return typeof sent === 'string' && safeRequestId.test(sent) ? sent : randomUUID()
}

/** Where a request's logger keeps the ids of its request span. */
const kTraceIds = Symbol('request span ids')

type TracedLogger = FastifyBaseLogger & { [kTraceIds]?: SpanContext }

/** A pino mixin (app.ts, tracing on): ids are read as a line is written, so levels that write none pay nothing (docs/operations.md#tracing). */
export function traceIdsOf (_mergeObject: object, _level: number, logger: object): Record<string, string> {
  const ids = (logger as TracedLogger)[kTraceIds]
  // A new object each time: pino merges the line's fields into it.
  return ids === undefined ? {} : { trace_id: ids.traceId, span_id: ids.spanId }
}

/** One log line per request, with nothing a caller sent (docs/security.md#what-reaches-the-logs); the id is echoed for callers to quote. */
export default fp(async (fastify) => {
  const traced = tracingStarted()
  // Callback hooks: an async one costs a promise per request, which tracing's context propagation makes dearer.
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    // @fastify/otel's onRequest hook runs first and leaves the request span active here.
    if (traced) (request.log as TracedLogger)[kTraceIds] = trace.getActiveSpan()?.spanContext()
    done()
  })
  fastify.addHook('onResponse', (request, reply, done) => {
    request.log.info({
      method: request.method,
      route: routeLabel(request),
      status: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 10) / 10,
      websiteId: request.caller?.website.id,
      action: request.identifyAction ?? undefined
    }, 'request')
    done()
  })
}, { name: 'request-log' })
