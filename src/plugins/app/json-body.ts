import { Transform, type Readable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { errorCodes, type FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { quoteKey } from '../../domain/metadata.js'
import { invalid, unsupported } from '../../domain/errors.js'

const utf8 = new TextDecoder('utf-8', { fatal: true })
export const NOT_UTF8 = 'not valid UTF-8'
const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d

function closingQuote (text: string, open: number): number {
  let end = text.indexOf('"', open + 1)
  for (;;) {
    let backslashes = 0
    while (text.charCodeAt(end - 1 - backslashes) === BACKSLASH) backslashes++
    if (backslashes % 2 === 0) return end
    end = text.indexOf('"', end + 1)
  }
}

/** The first key one object holds twice, compared unescaped; one pass suffices only because JSON.parse already accepted `text`. */
export function findDuplicateKey (text: string): string | undefined {
  let keys: Set<string> | undefined
  const enclosing: Array<Set<string> | undefined> = []
  let keyNext = false
  for (let index = 0; index < text.length; index++) {
    const char = text.charCodeAt(index)
    if (char === QUOTE) {
      const end = closingQuote(text, index)
      if (keyNext && keys !== undefined) {
        const raw = text.slice(index + 1, end)
        const key = raw.includes('\\') ? JSON.parse(text.slice(index, end + 1)) as string : raw
        if (keys.has(key)) return key
        keys.add(key)
        keyNext = false
      }
      index = end
    } else if (char === OPEN_BRACE || char === OPEN_BRACKET) {
      enclosing.push(keys)
      keys = char === OPEN_BRACE ? new Set() : undefined
      keyNext = char === OPEN_BRACE
    } else if (char === CLOSE_BRACE || char === CLOSE_BRACKET) {
      keys = enclosing.pop()
    } else if (char === COMMA) {
      keyNext = keys !== undefined
    }
  }
  return undefined
}

/** Undefined when the bytes are not UTF-8: never a U+FFFD in place of a bad byte. */
export function decodeUtf8 (bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes)
  } catch {
    return undefined
  }
}

/** The content coding of a request body (docs/api.md#identify-content-encoding), or null for one the service does not take. */
function contentCoding (request: FastifyRequest): 'gzip' | 'identity' | null {
  const coding = (request.headers['content-encoding'] ?? '').trim().toLowerCase()
  if (coding === '' || coding === 'identity') return 'identity'
  // x-gzip is gzip's old name, which RFC 9110 (8.4.1.3) asks recipients to take as gzip.
  if (coding === 'gzip' || coding === 'x-gzip') return 'gzip'
  return null
}

/** A decoded request body, with the count of bytes that came over the wire, which Fastify checks against Content-Length. */
type DecodedBody = Transform & { receivedEncodedLength: number }

/** `raw` gunzipped lazily, cut off with Fastify's 413 past `limit`. Why: docs/internals.md#gzip-request-bodies */
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
  gunzip.on('error', () => { body.destroy(invalid('The request body is not valid gzip')) })
  body.on('close', () => {
    raw.removeListener('data', countEncoded)
    raw.unpipe(gunzip)
    gunzip.destroy()
  })
  return body
}

/** The only body parser, replacing Fastify's. Why: docs/internals.md#json-body-parser */
export default fp(async (fastify) => {
  fastify.addHook('preParsing', (request, reply, payload: Readable, done) => {
    if (contentCoding(request) !== 'gzip') {
      done(null, payload)
      return
    }
    const body = gunzipBody(payload, request.routeOptions.bodyLimit)
    // A request answered before its body was read (a 429, say) frees its decoder too.
    reply.raw.once('close', () => { body.destroy() })
    done(null, body)
  })

  // Only JSON is accepted: without this, text/plain would be parsed as a string and get 400, not 415.
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    // Here rather than in the hook, so that the rate limit answers first, as for every other body check.
    if (contentCoding(request) === null) {
      done(unsupported('Content-Encoding must be gzip or none'), undefined)
      return
    }
    const buffer = body as Buffer
    if (buffer.length === 0) {
      done(invalid('The request body is empty: send a JSON object'), undefined)
      return
    }
    const text = decodeUtf8(buffer)
    if (text === undefined) {
      done(invalid(`The request body is ${NOT_UTF8}`), undefined)
      return
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      done(invalid('The request body is not valid JSON'), undefined)
      return
    }
    const duplicate = findDuplicateKey(text)
    if (duplicate !== undefined) {
      done(invalid(`The request body repeats the key ${quoteKey(duplicate)} in one object: send each key once`), undefined)
      return
    }
    done(null, parsed)
  })
}, { name: 'json-body' })
