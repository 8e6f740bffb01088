import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { MongoError } from 'mongodb'
import { DomainError, unavailable, type DomainErrorKind } from '../../domain/errors.js'
import { isDatabaseUnavailable } from '../../storage/mongo-errors.js'
import { PATH_PARAMETER_TOO_LONG, type ErrorEnvelope } from '../../schemas/errors.js'

const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const

type ValidationIssue = NonNullable<FastifyError['validation']>[number]

const statusOf: Record<DomainErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  'not-found': 404,
  conflict: 409,
  unsupported: 415,
  'too-many': 429,
  unavailable: 503,
  contended: 503
}

function errorEnvelope (code: number, message: string): ErrorEnvelope {
  return { status: 'error', error: { code, message } }
}

function sendError (reply: FastifyReply, code: number, message: string, headers: Record<string, string> = {}): FastifyReply {
  return reply.code(code).headers(headers).type('application/json; charset=utf-8').send(errorEnvelope(code, message))
}

/** A schema validation message that names the field and the rule it broke (ajv's words), never the value sent. */
function describeValidation (issue: ValidationIssue | undefined, context: string | undefined): string {
  if (issue === undefined) return 'The request is invalid'
  const missing = (issue.params as { missingProperty?: unknown }).missingProperty
  if (typeof missing === 'string') return `${missing} is required`
  const field = issue.instancePath.slice(1).replaceAll('/', '.')
  if (field === '') return context === 'body' ? 'The request body must be a JSON object' : `The ${String(context)} is invalid`
  return `${field} ${issue.message ?? 'is invalid'}`
}

function sendDomainError (reply: FastifyReply, error: DomainError): FastifyReply {
  const headers: Record<string, string> = error.retryAfterSeconds === null ? {} : { 'retry-after': String(error.retryAfterSeconds) }
  return sendError(reply, statusOf[error.kind], error.message, headers)
}

export default fp(async (fastify) => {
  /** 404, or 405 with Allow for a known path asked with another method. */
  function routeNotFound (request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const path = (request.url.split('?')[0] ?? '').slice(0, 200)
    const allowed = HTTP_METHODS.filter((method) => fastify.hasRoute({ method, url: path }))
    if (allowed.length > 0) {
      return sendError(reply, 405, `Method ${request.method} is not allowed on ${path}: use ${allowed.join(', ')}`, { allow: allowed.join(', ') })
    }
    return sendError(reply, 404, `Route ${request.method} ${path} not found`)
  }

  fastify.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    // An unknown route stays a 404 (or 405) even when its body could not be parsed.
    if (request.is404) return routeNotFound(request, reply)
    if (error instanceof DomainError) {
      if (error.kind === 'contended') request.log.warn({ err: { type: error.name, kind: error.kind } }, 'profile contended')
      return sendDomainError(reply, error)
    }
    if (error.validation !== undefined) {
      return sendError(reply, 400, describeValidation(error.validation[0], error.validationContext))
    }
    if (isDatabaseUnavailable(error)) {
      request.log.warn({ err: { type: error.name } }, 'database unavailable')
      return sendDomainError(reply, unavailable('The database is unavailable; try again shortly'))
    }
    const status = error.statusCode ?? 500
    // The route's own limit, which a route may raise above BODY_LIMIT_BYTES; of the decoded body when it came in gzip.
    if (status === 413) return sendError(reply, 413, `The request body is larger than ${request.routeOptions.bodyLimit} bytes`)
    if (status === 415) return sendError(reply, 415, 'Content-Type must be application/json')
    if (status >= 400 && status < 500) {
      // Fastify's own messages are written for callers; a plugin's may not be, so those get the status text.
      const fromFastify = (error.code as string | undefined)?.startsWith('FST_') === true
      return sendError(reply, status, fromFastify ? error.message : STATUS_CODES[status] ?? 'Bad request')
    }
    // Never a message, nor the stack line repeating it; a driver's frames neither: they may quote stored or sent values (docs/security.md#what-reaches-the-logs).
    const header = Error.prototype.toString.call(error)
    const frames = error.stack?.startsWith(header) === true ? error.stack.slice(header.length + 1) : undefined
    const detail = error instanceof MongoError ? {} : { stack: frames }
    request.log.error({ err: { type: error.name, code: error.code, ...detail } }, 'unexpected error')
    return sendError(reply, 500, 'Internal server error')
  })

  fastify.setNotFoundHandler(routeNotFound)
}, { name: 'errors' })

const answers: Record<string, [number, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'The request took too long to arrive'],
  HPE_HEADER_OVERFLOW: [431, 'The request headers are too large']
}

/** Requests that never reach a route (headers too large or too slow, not HTTP) get the envelope too, not Fastify's own JSON. */
export function clientErrorHandler (error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const [code, message] = answers[error.code ?? ''] ?? [400, 'The request is not valid HTTP']
  if (socket.writable) {
    const body = JSON.stringify(errorEnvelope(code, message))
    socket.write(`HTTP/1.1 ${String(code)} ${STATUS_CODES[code] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${String(Buffer.byteLength(body))}\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy()
}

/** Errors Fastify raises before routing (a URL that cannot be decoded, say), in the same envelope. */
export function frameworkErrors (error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const code = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400
  void sendError(reply, code, messageOf[code] ?? 'The request URL is malformed')
}

/** Fixed messages: Fastify's own quote the URL, which can be long or hostile. */
const messageOf: Partial<Record<number, string>> = { 414: PATH_PARAMETER_TOO_LONG }
