import { FastifyOtelInstrumentation } from '@fastify/otel'
import type { Span } from '@opentelemetry/api'
import type { Instrumentation } from '@opentelemetry/instrumentation'
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis'
import { MongoDBInstrumentation } from '@opentelemetry/instrumentation-mongodb'
import { ATTR_URL_PATH } from '@opentelemetry/semantic-conventions'
import type { FastifyRequest } from 'fastify'
import { routeLabel } from '../routes/route-label.js'

/*
 * The instrumentations, each told what it must not put in a span: the raw
 * URL (user ids in /profiles/:userId, query strings), the values and field
 * names of database commands, the arguments of Redis commands.
 */

/** Names the request span by its route template, and puts the template where the raw path would go. */
export function nameRequestSpan (span: Span, request: FastifyRequest): void {
  const route = routeLabel(request)
  span.setAttribute(ATTR_URL_PATH, route)
  span.updateName(`${request.method} ${route}`)
}

/**
 * A database command as its own top-level field names, every value a "?".
 * The driver and the repositories choose those names; deeper down are the
 * caller's metadata field names, and every value may be something stored.
 */
export function mongoCommandShape (command: Record<string, unknown>): string {
  return JSON.stringify(Object.fromEntries(Object.keys(command).map((name) => [name, '?'])))
}

/** A Redis command as its name alone: its keys and arguments name credentials and client addresses (rate limits, the failed-authentication count). */
export const redisCommandName = (name: string): string => name

export function instrumentations (): Instrumentation[] {
  return [
    new FastifyOtelInstrumentation({
      // Every Fastify instance is instrumented as it is created: app.ts needs no change.
      registerOnInitialization: true,
      // One span per request: a span for its handler, or for each of the dozen hooks it passes, would multiply the cost (docs/operations.md#tracing).
      instrumentHooks: false,
      instrumentHandler: false,
      // Exceptions may quote what the caller sent; the status says a request failed.
      recordExceptions: false,
      requestHook: nameRequestSpan
    }),
    new MongoDBInstrumentation({ dbStatementSerializer: mongoCommandShape }),
    new IORedisInstrumentation({ dbStatementSerializer: redisCommandName })
  ]
}
