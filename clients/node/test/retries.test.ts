import { once } from 'node:events'
import { createServer, type Server, type Socket } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { IdentifyClient, IdentifyError, type IdentifyBody } from '../src/index.js'
import { retryAfterMs, retryDelayMs } from '../src/retry.js'
import { batchRequests, bodies, expectRetriedAfterRetryAfter, serveTestApp, singleRequests, storedUserIds, userIdsOf } from './helpers.js'

/**
 * What is retried and what is not (docs/api.md#status-codes): 429 from the
 * service's own rate limit, after its Retry-After; network errors and
 * timeouts; never a 400 or a 401, which are reported at once, a batch
 * item's error with its index.
 */

const first = (calls: IdentifyBody[]): IdentifyBody => {
  const [call] = calls
  if (call === undefined) throw new Error('no body')
  return call
}

// One call a second for each key: the second call of a test is over the budget.
const limited = await serveTestApp({ RATE_LIMIT_MAX: 1, RATE_LIMIT_WINDOW_MS: 1000 })
const { app, site, url, requests } = await serveTestApp()
afterAll(async () => { await Promise.all([limited.app.close(), app.close()]) })

describe('429 from the service\'s rate limit', () => {
  it('a batch and a single call over the budget are sent again after Retry-After, and stored', async () => {
    const errors: IdentifyError[] = []
    // A short backoff, so that only honouring Retry-After (1 s) can explain the wait.
    const client = new IdentifyClient({ url: limited.url, key: limited.site.key, retryBaseDelay: 50, flushInterval: 60_000, onError: (error) => { errors.push(error) } })
    const calls = bodies('limited', 4)
    // Identify and batch identify each have their own budget (docs/api.md#rate-limit-per-credential): the second call of each is over it.
    for (const call of calls.slice(0, 2)) await client.identify(call)
    for (const call of calls.slice(2)) {
      client.enqueue(call)
      await client.flush()
    }
    await client.shutdown()

    expect(errors).toEqual([])
    expect(singleRequests(limited.requests).map((request) => request.status)).toEqual([200, 429, 200])
    expect(batchRequests(limited.requests).map((request) => request.status)).toEqual([200, 429, 200])
    expectRetriedAfterRetryAfter(batchRequests(limited.requests), 429)
    expectRetriedAfterRetryAfter(singleRequests(limited.requests), 429)
    expect(await storedUserIds(limited.app, limited.site)).toEqual(userIdsOf(calls))
  }, 20_000)
})

describe('errors that are not retried', () => {
  it('a 400 item of a batch is reported with its index and message; the other items are stored; the batch is sent once', async () => {
    const errors: IdentifyError[] = []
    const client = new IdentifyClient({ url, key: site.key, flushInterval: 60_000, onError: (error) => { errors.push(error) } })
    const start = requests.length
    const [good, bad, alsoGood] = bodies('item-error', 3)
    const invalid = { ...(bad ?? first(bodies('x', 1))), datafast_visitor_id: 'not-a-uuid' }
    for (const call of [good, invalid, alsoGood]) client.enqueue(call ?? invalid)
    await client.flush()

    expect(errors).toHaveLength(1)
    expect(errors[0]).toBeInstanceOf(IdentifyError)
    expect(errors[0]).toMatchObject({ kind: 'rejected', status: 400, index: 1, attempts: 1, calls: [invalid] })
    expect(errors[0]?.message).toMatch(/datafast_visitor_id/)
    expect(batchRequests(requests.slice(start)).map((request) => request.status)).toEqual([200])
    expect((await storedUserIds(app, site)).filter((id) => id.startsWith('item-error-'))).toEqual(['item-error-0', 'item-error-2'])
    await client.shutdown()
  })

  it('identify() rejects a 400 with the service\'s message, after one request', async () => {
    const client = new IdentifyClient({ url, key: site.key })
    const start = requests.length
    const call = { ...first(bodies('placeholder', 1)), user_id: 'undefined' }
    const error = await client.identify(call).then(() => null, (caught: unknown) => caught)
    expect(error).toBeInstanceOf(IdentifyError)
    expect(error).toMatchObject({ kind: 'rejected', status: 400, attempts: 1, calls: [call], index: undefined })
    expect((error as IdentifyError).message).toMatch(/placeholder/)
    expect(singleRequests(requests.slice(start)).map((request) => request.status)).toEqual([400])
  })

  it('a batch refused whole (401, a revoked key) is reported once for all its calls, and not sent again', async () => {
    const errors: IdentifyError[] = []
    const client = new IdentifyClient({ url, key: `df_${'A'.repeat(43)}`, flushInterval: 60_000, onError: (error) => { errors.push(error) } })
    const start = requests.length
    const calls = bodies('unauthorized', 3)
    for (const call of calls) client.enqueue(call)
    await client.flush()
    expect(errors.map((error) => [error.kind, error.status, error.index, error.calls])).toEqual([['rejected', 401, undefined, calls]])
    expect(batchRequests(requests.slice(start)).map((request) => request.status)).toEqual([401])
  })
})

/** A TCP server that does `handle` with each connection, and counts them. */
async function rawServer (handle: (socket: Socket) => void): Promise<{ url: string, connections: () => number, close: () => Promise<void> }> {
  let connections = 0
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    connections++
    sockets.add(socket)
    socket.on('error', () => undefined)
    handle(socket)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${String(port)}`,
    connections: () => connections,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      server.close()
      await once(server, 'close')
    }
  }
}

describe('network errors and timeouts', () => {
  it('a connection closed without an answer is retried maxRetries times, then rejected as unavailable', async () => {
    const server = await rawServer((socket) => { socket.destroy() })
    try {
      const client = new IdentifyClient({ url: server.url, key: 'df_key', maxRetries: 2, retryBaseDelay: 10 })
      const error = await client.identify(first(bodies('reset', 1))).then(() => null, (caught: unknown) => caught)
      expect(error).toMatchObject({ kind: 'unavailable', status: null, attempts: 3 })
      expect((error as Error).message).toMatch(/No answer from the identify service after 3 attempts/)
      expect(server.connections()).toBe(3)
    } finally {
      await server.close()
    }
  })

  it('an attempt that gets no answer within timeoutMs is abandoned and retried', async () => {
    // Reads the request and never answers.
    const server = await rawServer((socket) => { socket.resume() })
    try {
      const errors: IdentifyError[] = []
      const client = new IdentifyClient({ url: server.url, key: 'df_key', timeoutMs: 200, maxRetries: 1, retryBaseDelay: 10, flushInterval: 60_000, onError: (error) => { errors.push(error) } })
      const started = Date.now()
      client.enqueue(first(bodies('timeout', 1)))
      await client.flush()
      expect(Date.now() - started).toBeGreaterThanOrEqual(400)
      expect(errors.map((error) => [error.kind, error.status, error.attempts])).toEqual([['unavailable', null, 2]])
      expect(errors[0]?.message).toMatch(/timeout|aborted/i)
      expect(server.connections()).toBe(2)
    } finally {
      await server.close()
    }
  })
})

describe('retry delays', () => {
  const policy = { maxRetries: 5, baseDelayMs: 100, maxDelayMs: 10_000 }

  it('double at each retry, with the upper half of each step random', () => {
    expect([1, 2, 3, 4].map((retry) => retryDelayMs(retry, null, policy, () => 0))).toEqual([50, 100, 200, 400])
    expect([1, 2, 3, 4].map((retry) => Math.round(retryDelayMs(retry, null, policy, () => 0.999_999)))).toEqual([100, 200, 400, 800])
  })

  it('are never shorter than Retry-After, in seconds or as an HTTP date, and never longer than maxDelayMs', () => {
    expect(retryDelayMs(1, '3', policy, () => 0)).toBe(3000)
    expect(retryDelayMs(1, '3', policy, () => 0.5)).toBe(3050)
    expect(retryAfterMs('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('Wed, 21 Oct 2015 07:27:58 GMT'))).toBe(2000)
    expect(retryAfterMs('soon')).toBeNull()
    expect(retryDelayMs(1, '3600', policy, () => 0)).toBe(10_000)
    expect(retryDelayMs(20, null, policy, () => 0)).toBe(5000)
  })
})
