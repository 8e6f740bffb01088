import type { CommandStartedEvent } from 'mongodb'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { buildTestApp, createTestToken, createTestWebsite, identify, testDatabaseUrl, visitorId } from './helper.js'

/**
 * Deterministic guards of the identify path's cost: the database commands
 * one call sends, counted with the driver's command monitoring.
 */
const url = testDatabaseUrl()
const app = await buildTestApp({
  MONGO_URL: `${url}${url.includes('?') ? '&' : '?'}monitorCommands=true`,
  AUTH_CACHE_TTL_MS: 60_000
})
afterAll(async () => { await app.close() })

const sent: string[] = []
app.mongo.client.on('commandStarted', (event: CommandStartedEvent) => {
  const collection = event.command[event.commandName] as unknown
  sent.push(`${event.commandName} ${typeof collection === 'string' ? collection : ''}`.trim())
})
beforeEach(() => { sent.length = 0 })

async function commandsOf (call: () => Promise<{ statusCode: number, json: () => { data: { action: string } } }>, action: string): Promise<string[]> {
  sent.length = 0
  const response = await call()
  expect(response.statusCode).toBe(200)
  expect(response.json().data.action).toBe(action)
  return [...sent].sort()
}

const site = await createTestWebsite(app)
const cookieless = await createTestWebsite(app, { cookieless: true, accountId: site.accountId })
const { token } = await createTestToken(app, { accountId: site.accountId })
const body = (userId: string, visitor: string, plan = 'pro') => ({ user_id: userId, datafast_visitor_id: visitor, plan, seats: 3 })
// The key's first call reads it from the database; every test counts calls after that, whichever runs first.
await identify(app, { auth: site.key, body: body('warm-key', visitorId()) })

describe('database commands per identify, with warm credentials', () => {
  it('created: read the profile and the link, insert the profile, link the visitor', async () => {
    expect(await commandsOf(async () => await identify(app, { auth: site.key, body: body('new-user', visitorId()) }), 'created'))
      .toEqual(['find profiles', 'find visitorLinks', 'insert profiles', 'update visitorLinks'])
  })

  it('updated: the two reads and one update of the profile', async () => {
    const visitor = visitorId()
    await identify(app, { auth: site.key, body: body('known-user', visitor) })
    expect(await commandsOf(async () => await identify(app, { auth: site.key, body: body('known-user', visitor, 'team') }), 'updated'))
      .toEqual(['find profiles', 'find visitorLinks', 'update profiles'])
  })

  it('unchanged: the two reads and no write', async () => {
    const visitor = visitorId()
    await identify(app, { auth: site.key, body: body('same-user', visitor) })
    expect(await commandsOf(async () => await identify(app, { auth: site.key, body: body('same-user', visitor) }), 'unchanged'))
      .toEqual(['find profiles', 'find visitorLinks'])
  })

  it('updated by a new device: the two reads and the link, the profile document untouched', async () => {
    await identify(app, { auth: site.key, body: body('two-devices', visitorId()) })
    expect(await commandsOf(async () => await identify(app, { auth: site.key, body: body('two-devices', visitorId()) }), 'updated'))
      .toEqual(['find profiles', 'find visitorLinks', 'update visitorLinks'])
  })

  it('skipped on a cookieless website: no command at all', async () => {
    await identify(app, { auth: cookieless.key, body: body('cookieless', visitorId()) })
    expect(await commandsOf(async () => await identify(app, { auth: cookieless.key, body: body('cookieless', visitorId()) }), 'skipped'))
      .toEqual([])
  })

  it('a warm dft_ token costs no command either', async () => {
    const visitor = visitorId()
    await identify(app, { auth: token, websiteId: site.websiteId, body: body('token-user', visitor) })
    expect(await commandsOf(async () => await identify(app, { auth: token, websiteId: site.websiteId, body: body('token-user', visitor) }), 'unchanged'))
      .toEqual(['find profiles', 'find visitorLinks'])
  })

  it('a malformed key or an invalid body costs no command', async () => {
    expect((await identify(app, { auth: 'df_short', body: body('x', visitorId()) })).statusCode).toBe(401)
    expect((await identify(app, { auth: site.key, body: { user_id: 42 } })).statusCode).toBe(400)
    expect(sent).toEqual([])
  })
})
