import { BatchQueue } from './batch-queue.js'
import { visitorIdOf, type RequestWithCookies } from './cookies.js'
import { IdentifyError } from './errors.js'
import type { ErrorEnvelope, IdentifyBatchSuccess, IdentifyBody, IdentifySuccess } from './generated/api-types.js'
import { postJson, type TransportOptions } from './http-transport.js'
import { resolveOptions, type IdentifyClientOptions, type ResolvedOptions } from './options.js'
import { isRetryableStatus, sendWithRetries, type Attempted, type RetryPolicy } from './retry.js'

/** What a successful identify call says: its action and the profile's id. */
export type IdentifyResult = IdentifySuccess['data']

/** An identify body without the visitor id, which the request helpers read from the cookie. */
export type IdentifyFields = { [K in keyof IdentifyBody as K extends 'datafast_visitor_id' ? never : K]: IdentifyBody[K] }

/** A request helper's outcome: skipped when the request carried no visitor id. */
export type RequestOutcome<T> = { skipped: true } | ({ skipped: false } & T)

/** A queued call, written as JSON once, when queued: a body JSON cannot write fails at enqueue(), not in a batch. */
interface QueuedCall {
  body: IdentifyBody
  json: string
  bytes: number
}

// `{"items":[` and `]}` around the items of a batch body.
const BATCH_ENVELOPE_BYTES = 12

/**
 * The identify service's client: identify() sends one call and returns its
 * result; enqueue() queues calls that go out in batches, with retries, and
 * reports failures to onError. Call shutdown() before the process exits.
 */
export class IdentifyClient {
  private readonly options: ResolvedOptions
  private readonly identifyUrl: URL
  private readonly batchUrl: URL
  private readonly transport: TransportOptions
  private readonly retryPolicy: RetryPolicy
  private readonly queue: BatchQueue<QueuedCall>
  /** identify() calls in flight, which shutdown() waits for too. */
  private readonly inFlight = new Set<Promise<Attempted>>()
  private droppedCount = 0
  private shuttingDown: Promise<void> | null = null

  constructor (options: IdentifyClientOptions) {
    this.options = resolveOptions(options)
    this.identifyUrl = routeUrl(this.options, 'api/v1/identify')
    this.batchUrl = routeUrl(this.options, 'api/v1/identify/batch')
    this.transport = { key: this.options.key, timeoutMs: this.options.timeoutMs, gzipAboveBytes: this.options.gzipAboveBytes }
    this.retryPolicy = { maxRetries: this.options.maxRetries, baseDelayMs: this.options.retryBaseDelay, maxDelayMs: this.options.maxRetryDelay }
    this.queue = new BatchQueue<QueuedCall>({
      flushAt: this.options.flushAt,
      flushIntervalMs: this.options.flushInterval,
      maxQueueSize: this.options.maxQueueSize,
      // Each item but the first also costs its comma.
      maxBatchWeight: this.options.maxBatchBytes - BATCH_ENVELOPE_BYTES + 1,
      weightOf: (call) => call.bytes + 1,
      send: async (calls) => { await this.sendBatch(calls) }
    })
  }

  /** Queued calls dropped so far: the queue was full, the body could not be written as JSON, or the client was shut down. */
  get dropped (): number {
    return this.droppedCount
  }

  /** Queued calls not answered yet: waiting for their batch, or in the batch being sent. */
  get queued (): number {
    return this.queue.size
  }

  /** Sends one call now, retrying as configured; rejects with an IdentifyError. */
  async identify (body: IdentifyBody): Promise<IdentifyResult> {
    const json = this.serialize(body)
    if (this.shuttingDown !== null) throw new IdentifyError('The client is shut down', { kind: 'dropped', status: null, attempts: 0, calls: [body] })
    if (json instanceof IdentifyError) throw json
    const sending = sendWithRetries(async () => await postJson(this.identifyUrl, json, this.transport), this.retryPolicy)
    this.inFlight.add(sending)
    const forget = () => { this.inFlight.delete(sending) }
    sending.then(forget, forget)
    const outcome = await sending
    if (!('answer' in outcome) || outcome.answer.status !== 200) throw failure(outcome, [body])
    const data = (outcome.answer.body as Partial<IdentifySuccess> | undefined)?.data
    if (data === undefined) throw new IdentifyError('The call was answered 200 without data', { kind: 'unavailable', status: 200, attempts: outcome.attempts, calls: [body] })
    return data
  }

  /** Queues one call for the next batch; false when it was dropped instead (counted, and reported to onError). */
  enqueue (body: IdentifyBody): boolean {
    if (this.shuttingDown !== null) return this.drop(new IdentifyError('The client is shut down', { kind: 'dropped', status: null, attempts: 0, calls: [body] }))
    const json = this.serialize(body)
    if (json instanceof IdentifyError) return this.drop(json)
    if (this.queue.add({ body, json, bytes: Buffer.byteLength(json) })) return true
    return this.drop(new IdentifyError(`The queue is full (maxQueueSize ${String(this.options.maxQueueSize)})`, { kind: 'dropped', status: null, attempts: 0, calls: [body] }))
  }

  /** identify() with the visitor id of the request's datafast_visitor_id cookie; skipped, not failed, without one. */
  async identifyRequest (request: RequestWithCookies, fields: IdentifyFields): Promise<RequestOutcome<{ result: IdentifyResult }>> {
    const visitorId = visitorIdOf(request)
    if (visitorId === undefined) return { skipped: true }
    return { skipped: false, result: await this.identify({ ...fields, datafast_visitor_id: visitorId }) }
  }

  /** enqueue() with the visitor id of the request's datafast_visitor_id cookie; skipped without one. */
  enqueueRequest (request: RequestWithCookies, fields: IdentifyFields): RequestOutcome<{ queued: boolean }> {
    const visitorId = visitorIdOf(request)
    if (visitorId === undefined) return { skipped: true }
    return { skipped: false, queued: this.enqueue({ ...fields, datafast_visitor_id: visitorId }) }
  }

  /** Sends what is queued now, without waiting for a full batch; resolves once all of it has been answered. */
  async flush (): Promise<void> {
    await this.queue.flush()
  }

  /**
   * Stops taking calls, sends everything queued and waits for every call in
   * flight, retries included; the flush timer is gone, so nothing of the
   * client keeps the process alive afterwards. Calling it again waits for the same.
   */
  async shutdown (): Promise<void> {
    this.shuttingDown ??= (async () => {
      this.queue.close()
      await Promise.allSettled([this.queue.flush(), ...this.inFlight])
    })()
    await this.shuttingDown
  }

  private serialize (body: IdentifyBody): string | IdentifyError {
    try {
      const json: unknown = JSON.stringify(body)
      if (typeof json === 'string' && json.startsWith('{')) return json
      return new IdentifyError('The body must be an object', { kind: 'dropped', status: null, attempts: 0, calls: [body] })
    } catch (error) {
      // A BigInt or a cycle: the service could never take it.
      return new IdentifyError(`The body cannot be written as JSON: ${String(error)}`, { kind: 'dropped', status: null, attempts: 0, calls: [body], cause: error })
    }
  }

  private drop (error: IdentifyError): false {
    this.droppedCount++
    this.report(error)
    return false
  }

  private report (error: IdentifyError): void {
    try {
      this.options.onError(error)
    } catch {
      // A throwing handler must not stall the queue; there is nowhere left to report it.
    }
  }

  /** One batch, retried as a whole; then each item the service refused is reported alone, with its index. */
  private async sendBatch (calls: QueuedCall[]): Promise<void> {
    const json = `{"items":[${calls.map((call) => call.json).join(',')}]}`
    const outcome = await sendWithRetries(async () => await postJson(this.batchUrl, json, this.transport), this.retryPolicy)
    const bodies = calls.map((call) => call.body)
    if (!('answer' in outcome) || outcome.answer.status !== 200) {
      this.report(failure(outcome, bodies))
      return
    }
    // docs/api.md#batch-identify-answer: a 200 holds one result per item, in input order.
    const results = (outcome.answer.body as Partial<IdentifyBatchSuccess> | undefined)?.data?.results
    if (!Array.isArray(results)) {
      this.report(new IdentifyError('The batch was answered 200 without results', { kind: 'unavailable', status: 200, attempts: outcome.attempts, calls: bodies }))
      return
    }
    for (const result of results) {
      if (result.status === 'success') continue
      const call = calls[result.index]
      this.report(new IdentifyError(result.error.message, {
        kind: 'rejected',
        status: result.error.code,
        attempts: outcome.attempts,
        index: result.index,
        calls: call === undefined ? [] : [call.body]
      }))
    }
  }
}

/** A route's URL under the service's base URL, which may carry a path prefix. */
function routeUrl (options: ResolvedOptions, route: string): URL {
  const base = new URL(options.url)
  if (!base.pathname.endsWith('/')) base.pathname += '/'
  const url = new URL(route, base)
  if (options.websiteId !== undefined) url.searchParams.set('websiteId', options.websiteId)
  return url
}

const isErrorEnvelope = (body: unknown): body is ErrorEnvelope =>
  typeof (body as Partial<ErrorEnvelope> | undefined)?.error?.message === 'string'

/** fetch's own message is only "fetch failed": its cause says what failed (ECONNREFUSED, a reset, ...). */
function describe (error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  return error.cause instanceof Error ? `${error.message}: ${error.cause.message}` : error.message
}

/** The error of a call that did not end in a 200: the service's own message when it sent one. */
function failure (outcome: Attempted, calls: readonly IdentifyBody[]): IdentifyError {
  const tries = `after ${String(outcome.attempts)} attempt${outcome.attempts === 1 ? '' : 's'}`
  if (!('answer' in outcome)) {
    const reason = describe(outcome.error)
    return new IdentifyError(`No answer from the identify service ${tries}: ${reason}`, { kind: 'unavailable', status: null, attempts: outcome.attempts, calls, cause: outcome.error })
  }
  const { status, body } = outcome.answer
  const message = isErrorEnvelope(body) ? body.error.message : `HTTP ${String(status)}`
  return isRetryableStatus(status)
    ? new IdentifyError(`${message} (${String(status)} ${tries})`, { kind: 'unavailable', status, attempts: outcome.attempts, calls })
    : new IdentifyError(message, { kind: 'rejected', status, attempts: outcome.attempts, calls })
}
