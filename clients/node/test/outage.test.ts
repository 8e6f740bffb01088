import { afterAll, expect, it } from 'vitest'
import { appOnOwnDatabase } from '../../../test/own-database.js'
import { IdentifyClient, type IdentifyError } from '../src/index.js'
import { batchRequests, bodies, expectRetriedAfterRetryAfter, listen, recordRequests, singleRequests, storedUserIds, userIdsOf, waitFor } from './helpers.js'

/**
 * docs/api.md#database-unavailable: with its database away the service
 * answers 503 with Retry-After; the client keeps its calls, sends them
 * again after that wait, and they are stored once the database is back.
 */
// A short driver timeout (as test/outage.test.ts), so that the outage's 503s come within seconds.
const { app, database, site, close } = await appOnOwnDatabase({ MONGO_TIMEOUT_MS: 2000 })
const requests = recordRequests(app)
const url = await listen(app)
afterAll(close)

it('calls answered 503 while the database is stopped are sent again after Retry-After and stored once it is back', async () => {
  const errors: IdentifyError[] = []
  const client = new IdentifyClient({ url, key: site.key, flushInterval: 60_000, maxRetries: 6, onError: (error) => { errors.push(error) } })
  const queued = bodies('outage-batch', 20)
  const single = bodies('outage-single', 1)

  await database.stop('SIGTERM')
  for (const call of queued) client.enqueue(call)
  const flushed = client.flush()
  const identified = Promise.all(single.map(async (call) => await client.identify(call)))
  await waitFor('a 503 for the batch and the single call', () =>
    batchRequests(requests).some((request) => request.status === 503) && singleRequests(requests).some((request) => request.status === 503), 10_000)
  await database.start()

  await flushed
  expect((await identified).map((result) => result.action)).toEqual(['created'])
  expect(errors).toEqual([])
  for (const sent of [batchRequests(requests), singleRequests(requests)]) {
    expect(sent.at(-1)?.status).toBe(200)
    const unavailable = sent.filter((request) => request.status === 503)
    expect(unavailable.length).toBeGreaterThan(0)
    expectRetriedAfterRetryAfter(sent, 503)
  }
  expect(await storedUserIds(app, site)).toEqual(userIdsOf([...queued, ...single]))
  await client.shutdown()
}, 60_000)
