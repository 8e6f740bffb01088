import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { errorEnvelope, sendError } from '../plugins/app/errors.js'

const answers: Record<string, [number, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'The request took too long to arrive'],
  HPE_HEADER_OVERFLOW: [431, 'The request headers are too large']
}

/**
 * Requests that never reach a route (headers too large, sent too slowly, or
 * not HTTP at all) are answered in the same error envelope as every other
 * error, instead of Fastify's own JSON.
 */
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

/** Fastify's maxParamLength, which the app keeps at its default. */
export const PATH_PARAMETER_TOO_LONG = 'A path parameter is longer than 100 characters'

/** Fixed messages: Fastify's own quote the URL, which can be long or hostile. */
const messageOf: Partial<Record<number, string>> = { 414: PATH_PARAMETER_TOO_LONG }
