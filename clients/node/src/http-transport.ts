import { promisify } from 'node:util'
import { gzip } from 'node:zlib'

// Async, so that compressing a large batch never blocks the host application's event loop.
const gzipAsync = promisify(gzip)

export interface TransportOptions {
  /** The df_ website key or dft_ account token. */
  key: string
  /** Longest one attempt may take, answer body included. */
  timeoutMs: number
  /** Bodies larger than this many bytes are sent gzip-compressed. */
  gzipAboveBytes: number
}

/** One answer of the service, whatever its status. */
export interface HttpAnswer {
  status: number
  /** The Retry-After header as sent (seconds or an HTTP date), or null. */
  retryAfter: string | null
  /** The body parsed as JSON; undefined when it was not JSON (a proxy's error page, say). */
  body: unknown
}

const USER_AGENT = 'identify-client-node'

/**
 * POSTs a JSON text and reads the whole answer within one timeout. Rejects
 * only when no complete answer came (refused connection, reset, timeout):
 * every HTTP status resolves, and the caller decides what it means.
 */
export async function postJson (url: URL, json: string, options: TransportOptions): Promise<HttpAnswer> {
  const plain = Buffer.from(json, 'utf8')
  const compress = plain.byteLength > options.gzipAboveBytes
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${options.key}`,
      'content-type': 'application/json',
      accept: 'application/json',
      'user-agent': USER_AGENT,
      // docs/api.md#identify-content-encoding: the service decodes gzip before any other check.
      ...(compress ? { 'content-encoding': 'gzip' } : {})
    },
    body: compress ? await gzipAsync(plain) : plain,
    // The same signal bounds the body's download: a server that stalls mid-answer times out too.
    signal: AbortSignal.timeout(options.timeoutMs)
  })
  const text = await response.text()
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: parseJson(text) }
}

function parseJson (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
