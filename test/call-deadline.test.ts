import { afterAll, beforeAll, expect, it } from 'vitest'
import { expectError, expectSuccess, identify, visitorId } from './helper.js'
import { appOnOwnDatabase, whileDatabaseStalled, type AppOnOwnDatabase } from './own-database.js'

/**
 * A stalled database (SIGSTOP: connections open, nothing answered) holds each
 * command until its socket timeout, and a call makes several: the call's own
 * deadline (docs/reliability.md#no-call-hangs) answers it 503 first.
 */

/** Under MONGO_TIMEOUT_MS (the driver's heartbeat timeout) and the socket timeout (twice it, src/storage/database.ts), either of which would otherwise end the stalled call first. */
const MONGO_TIMEOUT_MS = 2000
const CALL_DEADLINE_MS = 1500
let own: AppOnOwnDatabase

beforeAll(async () => { own = await appOnOwnDatabase({ MONGO_TIMEOUT_MS, CALL_DEADLINE_MS }) })
afterAll(async () => { await own.close() })

it('a call on a stalled database is answered 503 by the call deadline, and calls succeed again once it resumes', async () => {
  const { app, site } = own
  const call = async (userId: string) => await identify(app, { auth: site.key, body: { user_id: userId, datafast_visitor_id: visitorId() } })
  expectSuccess(await call('before_stall'))

  const stalled = await whileDatabaseStalled(own.database, async () => await call('during_stall'))
  // Without the deadline the socket timeout ends the call first, as "The database is unavailable".
  expect(expectError(stalled, 503)).toBe('The service could not answer in time; try again shortly')
  expect(stalled.headers['retry-after']).toBeDefined()

  expectSuccess(await call('after_stall'))
}, 30_000)

it('holds over a real socket too, where Node emits the request events that inject does not', async () => {
  const { app, site } = own
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const call = async (userId: string): Promise<Response> => await fetch(`${base}/api/v1/identify`, {
    method: 'POST',
    headers: { authorization: `Bearer ${site.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: userId, datafast_visitor_id: visitorId() })
  })
  expect((await call('socket_before_stall')).status).toBe(200)

  const stalled = await whileDatabaseStalled(own.database, async () => await call('socket_during_stall'))
  expect(stalled.status).toBe(503)
  expect(await stalled.json()).toMatchObject({ error: { message: 'The service could not answer in time; try again shortly' } })
}, 30_000)

