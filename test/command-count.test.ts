import { ObjectId, type CommandStartedEvent } from 'mongodb'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { profileIdFor } from '../src/storage/repositories/profiles.js'
import { buildTestApp, createTestToken, createTestWebsite, identify, testDatabaseUrl, visitorId } from './helper.js'

/**
 * Deterministic guards of the identify path's cost, and of the profile
 * routes': the database commands one call sends, counted with the driver's
 * command monitoring.
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
  it('created: the merge that finds no profile, the insert listing the visitor, the link, a look for a record of its erasure', async () => {
    // The last read sees an erasure that happened meanwhile (docs/api.md#profiles-how-visitor-ids-are-kept).
    expect(await commandsOf(async () => await identify(app, { auth: site.key, body: body('new-user', visitorId()) }), 'created'))
      .toEqual(['find erasedIncarnations', 'findAndModify profiles', 'findAndModify visitorLinks', 'insert profiles'])
  })

  it('updated: one command, the merge of a visitor the profile lists (docs/api.md#identify-how-it-is-stored)', async () => {
    const visitor = visitorId()
    await identify(app, { auth: site.key, body: body('known-user', visitor) })
    expect(await commandsOf(async () => await identify(app, { auth: site.key, body: body('known-user', visitor, 'team') }), 'updated'))
      .toEqual(['findAndModify profiles'])
  })

  it('unchanged: the same one command, which changes nothing', async () => {
    const visitor = visitorId()
    await identify(app, { auth: site.key, body: body('same-user', visitor) })
    expect(await commandsOf(async () => await identify(app, { auth: site.key, body: body('same-user', visitor) }), 'unchanged'))
      .toEqual(['findAndModify profiles'])
  })

  it('updated by a new device: the merge that reads the profile, the link, the profile listing the visitor; no read of the link', async () => {
    // The profile does not list the visitor, so the link is written without reading it first.
    await identify(app, { auth: site.key, body: body('two-devices', visitorId()) })
    expect(await commandsOf(async () => await identify(app, { auth: site.key, body: body('two-devices', visitorId()) }), 'updated'))
      .toEqual(['findAndModify profiles', 'findAndModify visitorLinks', 'update profiles'])
  })

  it('updated by a visitor moving from another profile: one more write, which marks the profile it left', async () => {
    const visitor = visitorId()
    await identify(app, { auth: site.key, body: body('first-owner', visitor) })
    await identify(app, { auth: site.key, body: body('second-owner', visitorId()) })
    expect(await commandsOf(async () => await identify(app, { auth: site.key, body: body('second-owner', visitor) }), 'updated'))
      .toEqual(['findAndModify profiles', 'findAndModify visitorLinks', 'update profiles', 'update profiles'])
  })

  it('updated on a profile whose list was given up: the merge that reads it, the visitor\'s link, the update', async () => {
    const [visitor, leaver] = [visitorId(), visitorId()]
    await identify(app, { auth: site.key, body: body('links-user', visitor) })
    await identify(app, { auth: site.key, body: body('links-user', leaver) })
    await identify(app, { auth: site.key, body: body('other-owner', leaver) })
    expect(await commandsOf(async () => await identify(app, { auth: site.key, body: body('links-user', visitor, 'team') }), 'updated'))
      .toEqual(['find visitorLinks', 'findAndModify profiles', 'update profiles'])
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
      .toEqual(['findAndModify profiles'])
  })

  it('a malformed key or an invalid body costs no command', async () => {
    expect((await identify(app, { auth: 'df_short', body: body('x', visitorId()) })).statusCode).toBe(401)
    expect((await identify(app, { auth: site.key, body: { user_id: 42 } })).statusCode).toBe(400)
    expect(sent).toEqual([])
  })
})

describe('database commands per profile read and erasure, with warm credentials', () => {
  const get = async (url: string) => await app.inject({ url: `/api/v1${url}`, headers: { authorization: `Bearer ${site.key}` } })
  async function commandsOfRead (url: string): Promise<string[]> {
    sent.length = 0
    expect((await get(url)).statusCode).toBe(200)
    return [...sent].sort()
  }

  it('a profile by user_id or by id is one lookup by _id; by visitor, the link and then the profile', async () => {
    const visitor = visitorId()
    const { profileId } = (await identify(app, { auth: site.key, body: body('read-user', visitor) })).json<{ data: { profileId: string } }>().data
    expect(await commandsOfRead('/profiles?user_id=read-user')).toEqual(['find profiles'])
    expect(await commandsOfRead(`/profiles/${profileId}`)).toEqual(['find profiles'])
    expect(await commandsOfRead(`/visitors/${visitor}/profile`)).toEqual(['find profiles', 'find visitorLinks'])
  })

  it('erasing a profile with 10,000 visitor links is five commands: the read, the erasure record, the delete, one deleteMany of the links, the check that none is left', async () => {
    const userId = 'erased-user'
    await identify(app, { auth: site.key, body: body(userId, visitorId()) })
    // 9,999 more links written directly in the shape the repository writes, as identify would take minutes for them.
    const profiles = app.mongo.db.collection<{ _id: ObjectId, incarnation: ObjectId }>('profiles')
    const profile = (await profiles.findOne({ _id: profileIdFor(site.websiteId, userId) }))!
    await app.mongo.db.collection('visitorLinks').insertMany(Array.from({ length: 9_999 }, () => {
      const visitor = visitorId()
      return { _id: `${site.websiteId}:${visitor}` as unknown as ObjectId, websiteId: new ObjectId(site.websiteId), visitorId: visitor, profileId: profile._id, profileIncarnation: profile.incarnation, linkedAt: new Date() }
    }))
    await profiles.updateOne({ _id: profile._id }, { $set: { visitorIdsInLinks: true }, $unset: { visitorIds: '' } })

    sent.length = 0
    const erased = await app.inject({ method: 'DELETE', url: `/api/v1/profiles/${profile._id.toHexString()}`, headers: { authorization: `Bearer ${site.key}` } })
    expect(erased.json()).toEqual({ status: 'success', data: { profileId: profile._id.toHexString(), erased: true, visitorLinks: 10_000 } })
    // docs/api.md#profiles-erasure
    expect([...sent].sort()).toEqual(['delete profiles', 'delete visitorLinks', 'find profiles', 'find visitorLinks', 'insert erasedIncarnations'])
    expect(await app.mongo.db.collection('visitorLinks').countDocuments({ profileId: profile._id })).toBe(0)
  }, 120_000)
})

describe('database commands per export (docs/api.md#profiles-command-line)', () => {
  it('one cursor over the website\'s profiles in id order, a getMore per batch: memory stays that of one batch', async () => {
    const exporting = await createTestWebsite(app, { accountId: site.accountId })
    const userIds = Array.from({ length: 25 }, (_, i) => `export-${String(i)}`)
    for (const userId of userIds) await identify(app, { auth: exporting.key, body: body(userId, visitorId()) })
    const started: CommandStartedEvent[] = []
    const listener = (event: CommandStartedEvent): void => { started.push(event) }
    app.mongo.client.on('commandStarted', listener)
    const exported: string[] = []
    for await (const profile of app.repositories.profiles.exportProfiles(exporting.websiteId, 10)) exported.push(profile.id)
    app.mongo.client.off('commandStarted', listener)
    expect(started.map(({ commandName }) => commandName)).toEqual(['find', 'getMore', 'getMore'])
    expect(started[0]!.command).toMatchObject({ filter: { websiteId: new ObjectId(exporting.websiteId) }, sort: new Map([['_id', 1]]), batchSize: 10 })
    expect(exported).toEqual(userIds.map((userId) => profileIdFor(exporting.websiteId, userId).toHexString()).sort())
  })
})

describe('database commands per batch identify, with warm credentials (docs/api.md#batch-identify-how-it-is-stored)', () => {
  let batchCounter = 0
  async function commandsOfBatch (items: object[], counts: Record<string, number>): Promise<{ writes: string[], reads: Record<string, number> }> {
    sent.length = 0
    const response = await app.inject({ method: 'POST', url: '/api/v1/identify/batch', headers: { authorization: `Bearer ${site.key}` }, payload: { items } })
    expect(response.statusCode, response.body).toBe(200)
    expect(response.json<{ data: { counts: Record<string, number> } }>().data.counts).toMatchObject(counts)
    const reads: Record<string, number> = {}
    for (const command of sent.filter((name) => name.startsWith('find '))) reads[command] = (reads[command] ?? 0) + 1
    return { writes: sent.filter((name) => !name.startsWith('find ') || name === 'find erasedIncarnations').sort(), reads }
  }
  const users = (n: number, plan: string) => {
    const prefix = `batch-${String(++batchCounter)}`
    return Array.from({ length: n }, (_, i) => body(`${prefix}-${String(i)}`, visitorId(), plan))
  }

  // A batch reads its profiles and its links with one `$in` each, whatever its size: never one read per item.
  const oneReadEach = { 'find profiles': 1, 'find visitorLinks': 1, 'find erasedIncarnations': 1 }

  it.each([10, 1000])('%i new users: one read of the profiles, one of the links, one insert of the profiles, one of the links, one look for erasure records', async (n) => {
    const { writes, reads } = await commandsOfBatch(users(n, 'pro'), { created: n })
    expect(reads).toEqual(oneReadEach)
    expect(writes).toEqual(['find erasedIncarnations', 'insert profiles', 'insert visitorLinks'])
  })

  it.each([10, 1000])('%i new users on visitors of known users: the reads, the insert of the profiles, one bulk move of the links and one mark of the profiles they left', async (n) => {
    const owners = users(n, 'pro')
    await commandsOfBatch(owners, { created: n })
    const newcomers = users(n, 'pro').map((item, i) => ({ ...item, datafast_visitor_id: owners[i]!.datafast_visitor_id }))
    const { writes, reads } = await commandsOfBatch(newcomers, { created: n })
    expect(reads).toEqual(oneReadEach)
    expect(writes).toEqual(['find erasedIncarnations', 'insert profiles', 'update profiles', 'update visitorLinks'])
  })

  it.each([10, 1000])('%i updates of known users: the reads and one update command', async (n) => {
    const items = users(n, 'pro')
    await commandsOfBatch(items, { created: n })
    const { writes, reads } = await commandsOfBatch(items.map((item) => ({ ...item, plan: 'team' })), { updated: n })
    expect(reads).toEqual(oneReadEach)
    expect(writes).toEqual(['find erasedIncarnations', 'update profiles'])
    expect(await commandsOfBatch(items.map((item) => ({ ...item, plan: 'team' })), { unchanged: n })).toEqual({ writes: [], reads: { 'find profiles': 1, 'find visitorLinks': 1 } })
  })

  it.each([10, 1000])('%i visitors moving to other known users: one bulk move of their links, each only from where it was read, one mark of the profiles they left, one update of those they joined', async (n) => {
    const owners = users(n, 'pro')
    const movers = users(n, 'pro')
    await commandsOfBatch(owners, { created: n })
    await commandsOfBatch(movers, { created: n })
    const moved = movers.map((item, i) => ({ ...item, datafast_visitor_id: owners[i]!.datafast_visitor_id }))
    const { writes, reads } = await commandsOfBatch(moved, { updated: n })
    expect(reads).toEqual(oneReadEach)
    expect(writes).toEqual(['find erasedIncarnations', 'update profiles', 'update profiles', 'update visitorLinks'])
  })

  it('1,000 items naming 100 users and their visitors ten times each: still one read each, and every item as if sent alone', async () => {
    const items = users(100, 'p0')
    const repeated = Array.from({ length: 10 }, (_, round) => items.map((item) => ({ ...item, plan: `p${String(round)}` }))).flat()
    const { writes, reads } = await commandsOfBatch(repeated, { created: 100, updated: 900 })
    expect(reads).toEqual(oneReadEach)
    expect(writes).toEqual(['find erasedIncarnations', 'insert profiles', 'insert visitorLinks'])
    const stored = await app.repositories.profiles.findProfile(site.websiteId, items[42]!.user_id)
    expect(stored).toMatchObject({ metadata: { plan: 'p9', seats: 3 }, visitorIds: [items[42]!.datafast_visitor_id] })
  })

  it('a cookieless website or a batch of invalid items costs no command', async () => {
    await commandsOfBatch(users(5, 'pro'), { })
    sent.length = 0
    const response = await app.inject({ method: 'POST', url: '/api/v1/identify/batch', headers: { authorization: `Bearer ${cookieless.key}` }, payload: { items: users(5, 'pro') } })
    expect(response.json<{ data: { counts: { skipped: number } } }>().data.counts.skipped).toBe(5)
    expect((await commandsOfBatch([{ user_id: 42 }], { failed: 1 })).writes).toEqual([])
    expect(sent).toEqual([])
  })
})
