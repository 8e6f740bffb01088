import { Writable } from 'node:stream'
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
const logLines: string[] = []
const logStream = new Writable({ write (chunk: Buffer, _encoding, done) { logLines.push(...chunk.toString().split('\n').filter(Boolean)); done() } })

beforeAll(async () => { own = await appOnOwnDatabase({ MONGO_TIMEOUT_MS, CALL_DEADLINE_MS, LOG_LEVEL: 'info' }, { logStream }) })
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

/** The app listening on a real socket (once for the file), and a call to identify over it. */
let base: string | null = null
async function identifyOverSocket (userId: string): Promise<Response> {
  const { app, site } = own
  base ??= await app.listen({ host: '127.0.0.1', port: 0 })
  // The query string is what Fastify's own late-answer warning would have logged.
  return await fetch(`${base}/api/v1/identify?websiteId=${site.websiteId}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${site.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: userId, datafast_visitor_id: visitorId() })
  })
}

it('holds over a real socket too, where Node emits the request events that inject does not', async () => {
  expect((await identifyOverSocket('socket_before_stall')).status).toBe(200)

  const stalled = await whileDatabaseStalled(own.database, async () => await identifyOverSocket('socket_during_stall'))
  expect(stalled.status).toBe(503)
  expect(await stalled.json()).toMatchObject({ error: { message: 'The service could not answer in time; try again shortly' } })
}, 30_000)

it('holds when the database stalls under the handler, once the body was read: the request\'s close event then cancelled Fastify\'s handlerTimeout', async () => {
  const { app, database } = own
  const { profiles } = app.repositories
  const upsertProfile = profiles.upsertProfile.bind(profiles)
  const gateway = database.pid('gateway')
  if (gateway === null) throw new Error('the gateway of this database is not running')
  let stalledAt: 'handler' | null = null
  const linesBefore = logLines.length
  // The real upsert, on the real database, stalled as the handler starts it: the body has been read by then.
  profiles.upsertProfile = async (input) => {
    stalledAt = 'handler'
    process.kill(gateway, 'SIGSTOP')
    return await upsertProfile(input)
  }
  try {
    const stalled = await identifyOverSocket('socket_stall_in_handler')
    expect(stalledAt).toBe('handler')
    expect(stalled.status).toBe(503)
    expect(await stalled.json()).toMatchObject({ error: { message: 'The service could not answer in time; try again shortly' } })
  } finally {
    profiles.upsertProfile = upsertProfile
    process.kill(gateway, 'SIGCONT')
  }
  expect((await identifyOverSocket('socket_after_handler_stall')).status).toBe(200)

  // The stalled upsert ends once the database resumes; the handler's late end is one line of outcome, never Fastify's lines with the URL or an error's message.
  const lines = (): string[] => logLines.slice(linesBefore)
  await expect.poll(() => lines().some((line) => line.includes('call ended after its deadline')), { timeout: 15_000 }).toBe(true)
  const late = lines().map((line) => JSON.parse(line) as { msg: string, outcome?: string }).filter((line) => line.msg === 'call ended after its deadline')
  expect(late.map((line) => line.outcome)).toEqual(['completed'])
  for (const line of lines()) {
    expect(line).not.toContain('?websiteId=')
    expect(line).not.toMatch(/already sent|Promise errored/)
  }
}, 30_000)
