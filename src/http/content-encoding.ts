import { Transform, type Readable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { errorCodes, type FastifyRequest } from 'fastify'
import { badRequest } from '../errors.js'

/** The content coding of a request body (docs/api.md#identify-content-encoding), or null for one the service does not take. */
export function contentCoding (request: FastifyRequest): 'gzip' | 'identity' | null {
  const coding = (request.headers['content-encoding'] ?? '').trim().toLowerCase()
  if (coding === '' || coding === 'identity') return 'identity'
  // x-gzip is gzip's old name, which RFC 9110 (8.4.1.3) asks recipients to take as gzip.
  if (coding === 'gzip' || coding === 'x-gzip') return 'gzip'
  return null
}

/** A decoded request body, with the count of bytes that came over the wire, which Fastify checks against Content-Length. */
export type DecodedBody = Transform & { receivedEncodedLength: number }

/**
 * The gzip request body `raw`, decoded as it is read. Decoding stops at the
 * first chunk past `limit` with Fastify's own 413, so a small gzip bomb costs
 * at most the limit's worth of work (Fastify alone stops reading but lets zlib
 * inflate the rest); bytes that are not gzip are a 400. Nothing is read before
 * the body parser asks: checks that come first (the rate limit) cost no
 * inflating, and no decoding error can be raised before anyone listens.
 */
export function gunzipBody (raw: Readable, limit: number): DecodedBody {
  const gunzip = createGunzip()
  let decoded = 0
  const body: DecodedBody = Object.assign(new Transform({
    transform (chunk: Buffer, _encoding, callback) {
      decoded += chunk.length
      if (decoded > limit) callback(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE())
      else callback(null, chunk)
    }
  }), { receivedEncodedLength: 0 })
  const countEncoded = (chunk: Buffer): void => { body.receivedEncodedLength += chunk.length }
  const firstRead = body._read.bind(body)
  body._read = (size) => {
    body._read = firstRead
    raw.on('data', countEncoded)
    raw.pipe(gunzip).pipe(body)
    firstRead(size)
  }
  gunzip.on('error', () => { body.destroy(badRequest('The request body is not valid gzip')) })
  body.on('close', () => {
    raw.removeListener('data', countEncoded)
    raw.unpipe(gunzip)
    gunzip.destroy()
  })
  return body
}
