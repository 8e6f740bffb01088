import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { createTestToken } from '../../../test/helper.js'
import { IdentifyClient, type IdentifyError } from '../src/index.js'
import { batchRequests, bodies, serveTestApp, singleRequests, storedUserIds, userIdsOf, waitFor } from './helpers.js'

/**
 * enqueue() against the real service: batches go out by size (flushAt) or
 * by age (flushInterval), never above the service's batch maximum, from a
 * bounded queue whose drops are counted and reported; identify() sends one
 * call; bodies above the threshold travel gzip-compressed.
 */
const { app, site, url, requests } = await serveTestApp()
afterAll(async () => { await app.close() })

const clients: IdentifyClient[] = []
afterAll(async () => { await Promise.all(clients.map(async (client) => { await client.shutdown() })) })
// What a test's client reported without the test expecting it.
const unexpected: IdentifyError[] = []
afterEach(() => { expect(unexpected.splice(0)).toEqual([]) })

function clientOf (options: Partial<ConstructorParameters<typeof IdentifyClient>[0]> = {}): IdentifyClient {
  const client = new IdentifyClient({ url, key: site.key, onError: (error) => { unexpected.push(error) }, ...options })
  clients.push(client)
  return client
}

/** Requests recorded from now on. */
function since (): () => typeof requests {
  const start = requests.length
  return () => requests.slice(start)
}

describe('enqueue', () => {
  it('sends a batch each time flushAt calls are queued, and the rest on flush()', async () => {
    const client = clientOf({ flushAt: 10, flushInterval: 60_000 })
    const recorded = since()
    const calls = bodies('by-size', 25)
    for (const call of calls) expect(client.enqueue(call)).toBe(true)

    // Two batches of 10 answered; the 5 left wait for a full batch or for their time.
    await waitFor('two batches answered', () => client.queued === 5)
    expect(batchRequests(recorded()).map((request) => request.status)).toEqual([200, 200])

    await client.flush()
    expect(client.queued).toBe(0)
    expect(batchRequests(recorded()).map((request) => request.status)).toEqual([200, 200, 200])
    expect(singleRequests(recorded())).toEqual([])
    expect(await storedUserIds(app, site)).toEqual(expect.arrayContaining(userIdsOf(calls)))
  })

  it('sends what waits once flushInterval has passed, without a full batch', async () => {
    const client = clientOf({ flushAt: 100, flushInterval: 300 })
    const recorded = since()
    const calls = bodies('by-timer', 5)
    const queuedAt = Date.now()
    for (const call of calls) client.enqueue(call)

    await new Promise((resolve) => setTimeout(resolve, 150))
    expect(batchRequests(recorded())).toEqual([])
    await waitFor('the timer\'s batch answered', () => batchRequests(recorded()).some((request) => request.status === 200), 3000)
    const [batch] = batchRequests(recorded())
    expect(batch?.arrivedAt).toBeGreaterThanOrEqual(queuedAt + 290)
    expect(batchRequests(recorded())).toHaveLength(1)
    expect(await storedUserIds(app, site)).toEqual(expect.arrayContaining(userIdsOf(calls)))
  })

  it('never puts more than the service\'s batch maximum (1000) in a batch, whatever flushAt says', async () => {
    const client = clientOf({ flushAt: 5000, flushInterval: 60_000 })
    const recorded = since()
    const calls = bodies('batch-max', 1001)
    for (const call of calls) client.enqueue(call)
    // 1000 make a batch at once; the one left waits.
    await waitFor('a full batch answered', () => client.queued === 1, 20_000)
    expect(batchRequests(recorded()).map((request) => request.status)).toEqual([200])
    await client.flush()
    expect(batchRequests(recorded()).map((request) => request.status)).toEqual([200, 200])
    expect((await storedUserIds(app, site)).filter((id) => id.startsWith('batch-max-'))).toHaveLength(1001)
  }, 30_000)

  it('closes a batch before it would pass maxBatchBytes, the service\'s body limit', async () => {
    const client = clientOf({ flushInterval: 60_000, maxBatchBytes: 1024, gzipAboveBytes: Number.POSITIVE_INFINITY })
    const recorded = since()
    const calls = bodies('weight', 7).map((call) => ({ ...call, bio: 'x'.repeat(300) }))
    for (const call of calls) client.enqueue(call)
    await client.flush()
    const batches = batchRequests(recorded())
    expect(batches.length).toBeGreaterThan(2)
    for (const batch of batches) expect(batch.contentLength).toBeLessThanOrEqual(1024)
    expect(batches.map((batch) => batch.status).every((status) => status === 200)).toBe(true)
    expect((await storedUserIds(app, site)).filter((id) => id.startsWith('weight-'))).toEqual(userIdsOf(calls))
  })

  it('drops calls past maxQueueSize, counts them and reports each to onError; the queued ones are sent', async () => {
    const errors: IdentifyError[] = []
    const client = clientOf({ flushAt: 100, flushInterval: 60_000, maxQueueSize: 5, onError: (error) => { errors.push(error) } })
    const calls = bodies('overflow', 8)
    expect(calls.map((call) => client.enqueue(call))).toEqual([true, true, true, true, true, false, false, false])
    expect(client.dropped).toBe(3)
    expect(errors.map((error) => [error.kind, error.status, error.attempts, error.calls])).toEqual(calls.slice(5).map((call) => ['dropped', null, 0, [call]]))
    expect(errors[0]?.message).toMatch(/maxQueueSize 5/)

    await client.flush()
    const stored = (await storedUserIds(app, site)).filter((id) => id.startsWith('overflow-'))
    expect(stored).toEqual(userIdsOf(calls.slice(0, 5)))
    expect(client.dropped).toBe(3)
  })

  it('reports a call JSON cannot write as dropped at enqueue(), and goes on with the others', async () => {
    const errors: IdentifyError[] = []
    const client = clientOf({ flushInterval: 60_000, onError: (error) => { errors.push(error) } })
    const [good] = bodies('serializable', 1)
    // A BigInt is no JSON: a JavaScript caller (or a cast) can still pass one.
    const bad = { user_id: 'bigint', datafast_visitor_id: good?.datafast_visitor_id ?? '', seats: 1n } as unknown as Parameters<IdentifyClient['enqueue']>[0]
    expect(client.enqueue(bad)).toBe(false)
    expect(client.enqueue(good ?? bad)).toBe(true)
    expect(client.dropped).toBe(1)
    expect(errors.map((error) => [error.kind, error.status])).toEqual([['dropped', null]])
    expect(errors[0]?.message).toMatch(/JSON/)
    await client.flush()
    expect(await storedUserIds(app, site)).toContain('serializable-0')
  })
})

describe('identify', () => {
  it('sends one call to /api/v1/identify and resolves to its result', async () => {
    const client = clientOf()
    const recorded = since()
    const [call] = bodies('single', 1)
    if (call === undefined) throw new Error('no body')
    const created = await client.identify(call)
    expect(created.profileId).toMatch(/^[0-9a-f]{24}$/)
    expect(created).toEqual({ message: 'User profile created successfully', profileId: created.profileId, action: 'created' })
    expect(await client.identify(call)).toEqual({ ...created, message: 'User profile unchanged', action: 'unchanged' })
    expect(singleRequests(recorded()).map((request) => request.status)).toEqual([200, 200])
  })

  it('sends a dft_ token\'s calls with ?websiteId=', async () => {
    const { token } = await createTestToken(app, { accountId: site.accountId })
    const recorded = since()
    const [call] = bodies('token', 1)
    if (call === undefined) throw new Error('no body')
    const client = clientOf({ key: token, websiteId: site.websiteId })
    expect((await client.identify(call)).action).toBe('created')
    client.enqueue({ ...call, plan: 'team' })
    await client.flush()
    expect(recorded().map((request) => request.path)).toEqual([`/api/v1/identify?websiteId=${site.websiteId}`, `/api/v1/identify/batch?websiteId=${site.websiteId}`])
  })
})

describe('gzip', () => {
  it('compresses a body above gzipAboveBytes, sends a small one plain; the service stores both', async () => {
    const client = clientOf({ gzipAboveBytes: 1024 })
    const recorded = since()
    const [small, large] = bodies('gzip', 2)
    if (small === undefined || large === undefined) throw new Error('no body')
    await client.identify(small)
    await client.identify({ ...large, bio: 'x'.repeat(4000) })
    expect(singleRequests(recorded()).map((request) => [request.contentEncoding, request.status])).toEqual([[undefined, 200], ['gzip', 200]])
    const stored = await app.mongo.db.collection<{ userId: string, metadata: { bio?: string } }>('profiles').findOne({ userId: 'gzip-1' })
    expect(stored?.metadata.bio).toHaveLength(4000)
  })
})
