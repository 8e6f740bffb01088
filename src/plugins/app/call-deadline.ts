import type { FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import { unavailable } from '../../domain/errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The call's deadline in milliseconds (callDeadline() in src/routes/call-deadline.ts); none when unset or 0. */
    callDeadlineMs?: number
  }
  interface FastifyRequest {
    /** The timer of the call's deadline while it runs; null on routes without one and once answered. */
    callDeadline: NodeJS.Timeout | null
  }
}

function passDeadline (reply: FastifyReply): void {
  reply.request.callDeadline = null
  // Answered meanwhile (its timer not yet cleared), or the caller is gone: nothing to say.
  if (reply.sent || reply.raw.headersSent || reply.raw.destroyed) return
  reply.log.warn({ err: { type: 'DomainError', code: 'CALL_DEADLINE' } }, 'call deadline passed')
  reply.send(unavailable('The service could not answer in time; try again shortly'))
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
  fastify.addHook('onRequest', (request, reply, done) => {
    const milliseconds = request.routeOptions.config.callDeadlineMs
    if (milliseconds !== undefined && milliseconds > 0) request.callDeadline = setTimeout(passDeadline, milliseconds, reply)
    done()
  })
  fastify.addHook('onResponse', (request, _reply, done) => {
    clearTimeout(request.callDeadline ?? undefined)
    request.callDeadline = null
    done()
  })
}, { name: 'call-deadline' })
