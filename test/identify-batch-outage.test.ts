import type { CommandSucceededEvent } from 'mongodb'
import { afterAll, expect, it } from 'vitest'
import { visitorId } from './helper.js'
import { walkProfiles } from './profiles-helper.js'
import { appOnOwnDatabase } from './own-database.js'

/*
 * docs/api.md#batch-identify-errors-and-retries: the database dies between a
 * batch's insert of its new profiles and its other writes; the call is a
 * 503, and the same batch sent again converges to the state of one
 * successful call.
 */
const { app, database, site, close } = await appOnOwnDatabase({ MONGO_TIMEOUT_MS: 2000 }, { monitorCommands: true })
afterAll(close)

const send = async (items: object[]) => await app.inject({ method: 'POST', url: '/api/v1/identify/batch', headers: { authorization: `Bearer ${site.key}` }, payload: { items } })

it('a batch cut by an outage after its profile insert is a 503, and its retry converges', async () => {
  const known = Array.from({ length: 10 }, (_, n) => ({ user_id: `known-${String(n)}`, datafast_visitor_id: visitorId(), plan: 'free' }))
  expect((await send(known)).statusCode).toBe(200)
  const items = [
    ...Array.from({ length: 30 }, (_, n) => ({ user_id: `new-${String(n)}`, datafast_visitor_id: visitorId(), plan: 'pro', $set_once: { source: 'import' } })),
    ...known.map((item, n) => ({ ...item, plan: 'team', $unset: ['missing'], datafast_visitor_id: n % 2 === 0 ? item.datafast_visitor_id : visitorId() }))
  ]
  const killed = new Promise<void>((resolve, reject) => {
    const listener = (event: CommandSucceededEvent): void => {
      if (event.commandName !== 'insert' || (event.reply as { n?: number }).n !== 30) return
      app.mongo.client.off('commandSucceeded', listener)
      database.stop('SIGKILL').then(resolve, reject)
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
  expect(profiles.get('new-0')?.metadata).toEqual({ plan: 'pro', source: 'import' })
  // A third send finds everything stored.
  expect((await send(items)).json<{ data: { counts: { unchanged: number } } }>().data.counts.unchanged).toBe(items.length)
}, 120_000)
