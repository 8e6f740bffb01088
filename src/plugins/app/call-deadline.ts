import type { FastifyContextConfig, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify'
import fp from 'fastify-plugin'
import { unavailable } from '../../domain/errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The call's deadline in milliseconds, read by deadlineOf(): none when unset or 0 (CALL_DEADLINE_MS=0). */
    callDeadlineMs?: number
  }
  interface FastifyRequest {
    /** The timer of the call's deadline while it runs; null on routes without one and once answered. */
    callDeadline: NodeJS.Timeout | null
  }
}

/** A route's deadline in milliseconds, or null when it has none. */
function deadlineOf (config: FastifyContextConfig | undefined): number | null {
  const milliseconds = config?.callDeadlineMs ?? 0
  return milliseconds > 0 ? milliseconds : null
}

function passDeadline (reply: FastifyReply): void {
  reply.request.callDeadline = null
  // Answered meanwhile (its timer not yet cleared), or the caller is gone: nothing to say.
  if (reply.sent || reply.raw.headersSent || reply.raw.destroyed) return
  reply.log.warn({ err: { type: 'DomainError', code: 'CALL_DEADLINE' } }, 'call deadline passed')
  reply.send(unavailable('The service could not answer in time; try again shortly'))
}

/** What a handler still running at its deadline ends with: one line of outcome and error type, never Fastify's own lines, which hold the URL or the error's message (docs/security.md#what-reaches-the-logs). */
function endedLate (request: FastifyRequest, outcome: 'completed' | 'failed', error?: unknown): undefined {
  const err = error instanceof Error ? { type: error.name, code: 'code' in error ? error.code : undefined } : undefined
  request.log.warn({ outcome, err }, 'call ended after its deadline')
  return undefined
}

/** On a route with a deadline, its timer is gone before the handler ends only if the deadline passed: onResponse comes after the handler's answer. */
const deadlinePassed = (request: FastifyRequest): boolean => request.callDeadline === null

/** The handler, made to end quietly once its deadline passed: Fastify sends nothing for an undefined result on an answered or closed reply. */
function endingQuietlyLate (handler: RouteHandlerMethod): RouteHandlerMethod {
  return function (this: unknown, request, reply) {
    return Promise.resolve(Reflect.apply(handler, this, [request, reply])).then(
      (result: unknown) => deadlinePassed(request) ? endedLate(request, 'completed') : result,
      (error: unknown) => {
        if (deadlinePassed(request)) return endedLate(request, 'failed', error)
        throw error
      })
  }
}

/**
 * A route's call deadline, answered 503 (docs/reliability.md#no-call-hangs).
 * Fastify's own handlerTimeout is not used: over a real socket it is
 * cancelled as soon as a request's body has been read, so it never bounds
 * the database work of a POST, and it costs an AbortController per call
 * (docs/internals.md#the-call-deadline).
 */
export default fp(async (fastify) => {
  fastify.decorateRequest('callDeadline', null)
  fastify.addHook('onRoute', (route) => {
    if (deadlineOf(route.config) !== null) route.handler = endingQuietlyLate(route.handler)
  })
  fastify.addHook('onRequest', (request, reply, done) => {
    const milliseconds = deadlineOf(request.routeOptions.config)
    if (milliseconds !== null) request.callDeadline = setTimeout(passDeadline, milliseconds, reply)
    done()
  })
  fastify.addHook('onResponse', (request, _reply, done) => {
    clearTimeout(request.callDeadline ?? undefined)
    request.callDeadline = null
    done()
  })
}, { name: 'call-deadline' })
