import type { IdentifyError } from './errors.js'
import { BATCH_BODY_LIMIT_BYTES, BATCH_MAX_ITEMS } from './generated/api-types.js'

export interface IdentifyClientOptions {
  /** The service's base URL, e.g. http://127.0.0.1:3000 (a path prefix is kept: https://example.com/identify). */
  url: string
  /** A df_ website key, or a dft_ account token with identify:write (then websiteId is required). */
  key: string
  /** The website to identify on, sent as ?websiteId=: required with a dft_ token, optional with a df_ key. */
  websiteId?: string
  /** Queued calls that make a batch, at most the service's batch maximum (1000). Default 100. */
  flushAt?: number
  /** Longest a queued call waits for its batch to fill, in ms. Default 1000. */
  flushInterval?: number
  /** Most queued calls held (waiting or being sent); more are dropped and reported. Default 10,000. */
  maxQueueSize?: number
  /** Largest batch body in bytes, before compression: the service's BATCH_BODY_LIMIT_BYTES. Default 5 MiB. */
  maxBatchBytes?: number
  /** Retries of a call after 429, 502, 503, 504, a network error or a timeout. Default 5. */
  maxRetries?: number
  /** First retry's wait without Retry-After, doubled at each retry, half of it random. Default 500 ms. */
  retryBaseDelay?: number
  /** Longest wait before a retry, Retry-After included. Default 60,000 ms. */
  maxRetryDelay?: number
  /** Longest one attempt may take, answer included. Default 15,000 ms. */
  timeoutMs?: number
  /** Bodies over this many bytes are sent with Content-Encoding: gzip. Default 1024; Infinity never compresses. */
  gzipAboveBytes?: number
  /** Receives every failure of a queued call, and every drop. Default: a console.warn line. */
  onError?: (error: IdentifyError) => void
}

export type ResolvedOptions = Required<Omit<IdentifyClientOptions, 'websiteId'>> & { websiteId: string | undefined }

function count (name: string, value: number | undefined, fallback: number, minimum: number, infinityAllowed = false): number {
  const chosen = value ?? fallback
  const valid = Number.isInteger(chosen) || (infinityAllowed && chosen === Number.POSITIVE_INFINITY)
  if (!valid || chosen < minimum) throw new RangeError(`${name} must be an integer of at least ${String(minimum)}`)
  return chosen
}

/** A string option as JavaScript callers may pass it: unchecked by any compiler. */
const text = (value: unknown): string | undefined => typeof value === 'string' && value !== '' ? value : undefined

function warn (error: IdentifyError): void {
  const status = error.status === null ? '' : ` ${String(error.status)}`
  const item = error.index === undefined ? '' : ` (batch item ${String(error.index)})`
  console.warn(`identify-client: ${error.kind}${status}${item}: ${error.message}`)
}

/** The options with their defaults; throws a TypeError or RangeError naming the first invalid one. */
export function resolveOptions (options: IdentifyClientOptions): ResolvedOptions {
  const url = text(options.url)
  if (url === undefined || !URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) throw new TypeError('url must be the http(s) URL of the identify service')
  const key = text(options.key)
  if (key === undefined) throw new TypeError('key must be a df_ website key or a dft_ account token')
  const websiteId: unknown = options.websiteId
  if (websiteId !== undefined && text(websiteId) === undefined) throw new TypeError('websiteId must be a website id')
  return {
    url,
    key,
    websiteId: text(websiteId),
    // docs/api.md#batch-identify-body: more items than the service's maximum would be a 400 for the whole batch.
    flushAt: Math.min(count('flushAt', options.flushAt, 100, 1), BATCH_MAX_ITEMS),
    flushInterval: count('flushInterval', options.flushInterval, 1000, 0),
    maxQueueSize: count('maxQueueSize', options.maxQueueSize, 10_000, 1),
    maxBatchBytes: count('maxBatchBytes', options.maxBatchBytes, BATCH_BODY_LIMIT_BYTES, 1024),
    maxRetries: count('maxRetries', options.maxRetries, 5, 0),
    retryBaseDelay: count('retryBaseDelay', options.retryBaseDelay, 500, 0),
    maxRetryDelay: count('maxRetryDelay', options.maxRetryDelay, 60_000, 0),
    timeoutMs: count('timeoutMs', options.timeoutMs, 15_000, 1),
    gzipAboveBytes: count('gzipAboveBytes', options.gzipAboveBytes, 1024, 0, true),
    onError: options.onError ?? warn
  }
}
