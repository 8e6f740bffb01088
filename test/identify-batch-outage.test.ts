import type { CommandSucceededEvent } from 'mongodb'
import { afterAll, expect, it } from 'vitest'
import { withDatabaseName } from '../src/storage/mongo-url.js'
import type { DatabasePart } from '../tools/local-database.js'
import type { App } from '../src/app.js'
import { buildTestApp, createTestWebsite, expectError, expectSuccess, RETRY_AFTER, visitorId } from './helper.js'
import { walkProfiles } from './profiles-helper.js'
import { appOnOwnDatabase, whileDatabaseStalled } from './own-database.js'

/*
 * docs/api.md#batch-identify-errors-and-retries: PostgreSQL or the gateway
 * dies between a batch's insert of its new profiles and its other writes, or
 * the database stalls under a batch until BATCH_CALL_DEADLINE_MS; the call is
 * a 503, and the same batch sent again converges to the state of one
 * successful call.
 */
const { app, database, site, close } = await appOnOwnDatabase({ MONGO_TIMEOUT_MS: 2000 }, { monitorCommands: true })

/**
 * For the deadline, a second app on the same server (a database of its own).
 * Its deadline is under MONGO_TIMEOUT_MS, so that no command, connection or
 * heartbeat of the driver gives up on the stalled database first; identify's
 * deadline is off, so that only the batch's own can answer.
 */
const BATCH_CALL_DEADLINE_MS = 2500
const deadlineApp = await buildTestApp({ MONGO_URL: withDatabaseName(database.url, 'deadline'), MONGO_TIMEOUT_MS: 5000, CALL_DEADLINE_MS: 0, BATCH_CALL_DEADLINE_MS })
const deadlineSite = await createTestWebsite(deadlineApp)

afterAll(async () => {
  await database.start()
  await deadlineApp.close()
  await close()
})

const sendTo = async (to: App, key: string, items: object[]) => await to.inject({ method: 'POST', url: '/api/v1/identify/batch', headers: { authorization: `Bearer ${key}` }, payload: { items } })
const send = async (items: object[]) => await sendTo(app, site.key, items)

it.each<[string, Exclude<DatabasePart, 'all'>]>([
  ['PostgreSQL (under a live gateway)', 'postgres'],
  ['the gateway', 'gateway']
])('a batch cut by a SIGKILL of %s after its profile insert is a 503, and its retry converges', async (_what, part) => {
  const known = Array.from({ length: 10 }, (_, n) => ({ user_id: `${part}-known-${String(n)}`, datafast_visitor_id: visitorId(), plan: 'free' }))
  expect((await send(known)).statusCode).toBe(200)
  const items = [
    ...Array.from({ length: 30 }, (_, n) => ({ user_id: `${part}-new-${String(n)}`, datafast_visitor_id: visitorId(), plan: 'pro', $set_once: { source: 'import' } })),
    ...known.map((item, n) => ({ ...item, plan: 'team', $unset: ['missing'], datafast_visitor_id: n % 2 === 0 ? item.datafast_visitor_id : visitorId() }))
  ]
  const killed = new Promise<void>((resolve, reject) => {
    const listener = (event: CommandSucceededEvent): void => {
      if (event.commandName !== 'insert' || (event.reply as { n?: number }).n !== 30) return
      app.mongo.client.off('commandSucceeded', listener)
      database.stop('SIGKILL', part).then(resolve, reject)
    }
    app.mongo.client.on('commandSucceeded', listener)
  })
  const cut = await send(items)
  await killed
  expect(cut.statusCode, cut.body).toBe(503)
  await database.start()

  let retried = await send(items)
  for (let attempt = 0; retried.statusCode === 503 && attempt < 20; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 500))
    retried = await send(items)
  }
  expect(retried.statusCode, retried.body).toBe(200)
  expect(retried.json<{ data: { counts: { failed: number } } }>().data.counts.failed).toBe(0)
  const profiles = new Map((await walkProfiles(app, site.key)).map((profile) => [profile.userId, profile]))
  for (const item of items) {
    const profile = profiles.get(item.user_id)
    expect(profile?.visitorIds, item.user_id).toContain(item.datafast_visitor_id)
    expect(profile?.metadata.plan, item.user_id).toBe(item.plan)
  }
  expect(profiles.get(`${part}-new-0`)?.metadata).toEqual({ plan: 'pro', source: 'import' })
  // A third send finds everything stored.
  expect((await send(items)).json<{ data: { counts: { unchanged: number } } }>().data.counts.unchanged).toBe(items.length)
}, 120_000)

it('a batch on a stalled database is answered 503 by BATCH_CALL_DEADLINE_MS, and sent again once it resumes, converges', async () => {
  const send = async (items: object[]) => await sendTo(deadlineApp, deadlineSite.key, items)
  expectSuccess(await send([{ user_id: 'before-stall', datafast_visitor_id: visitorId() }]))
  const items = Array.from({ length: 20 }, (_, n) => ({ user_id: `stalled-${String(n)}`, datafast_visitor_id: visitorId(), plan: 'pro' }))

  const stalled = await whileDatabaseStalled(database, async () => await send(items))
  // Without the deadline the driver ends the call later, as "The database is unavailable".
  expect(expectError(stalled, 503)).toBe('The service could not answer in time; try again shortly')
  expect(stalled.headers['retry-after']).toMatch(RETRY_AFTER)

  // The stalled call's writes go on in the background once the database resumes; the retry meets them.
  const retried = await send(items)
  expectSuccess(retried)
  expect(retried.json<{ data: { counts: { failed: number } } }>().data.counts.failed).toBe(0)
  const profiles = new Map((await walkProfiles(deadlineApp, deadlineSite.key)).map((profile) => [profile.userId, profile]))
  for (const item of items) {
    expect(profiles.get(item.user_id)?.visitorIds, item.user_id).toEqual([item.datafast_visitor_id])
    expect(profiles.get(item.user_id)?.metadata, item.user_id).toEqual({ plan: 'pro' })
  }
}, 60_000)
