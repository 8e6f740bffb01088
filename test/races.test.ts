import { isDeepStrictEqual } from 'node:util'
import { ObjectId } from 'mongodb'
import { afterAll, describe, expect, it } from 'vitest'
import { buildTestApp, createTestWebsite, identify, testDatabaseUrl, visitorId, withConnectionOptions, type TestWebsite } from './helper.js'
import { watchRaces } from './profiles-helper.js'

/*
 * docs/api.md#identify-concurrent-calls (concurrent calls for one profile all
 * succeed, leaving one profile with every visitor linked and the metadata of
 * some serial order) and docs/api.md#identify-visitor-links (a visitor is on
 * at most one profile per website), under real concurrency against the
 * database: the app's own connection pool (the driver's default, unless the
 * test server's URL limits it, which the first test would catch) runs the
 * calls' commands side by side. Each test counts, with command monitoring,
 * the race it is about: writes of one document in flight at once, or inserts
 * of one `_id` that lost.
 */

// Hundreds of calls at once: these tests are about outcomes, so without the call deadline.
const app = await buildTestApp({ CALL_DEADLINE_MS: 0, MONGO_URL: withConnectionOptions(testDatabaseUrl(), { monitorCommands: 'true' }) })
afterAll(async () => { await app.close() })
const races = watchRaces(app.mongo.client)

type Reply = Awaited<ReturnType<typeof identify>>
type Metadata = Record<string, unknown>

const profiles = app.mongo.db.collection('profiles')
const links = app.mongo.db.collection('visitorLinks')

let userCounter = 0
const newUserId = (): string => `race_${String(++userCounter)}_${visitorId().slice(0, 8)}`

async function call (site: TestWebsite, userId: string, vid: string, metadata: Metadata = {}): Promise<Reply> {
  return await identify(app, { auth: site.key, body: { user_id: userId, datafast_visitor_id: vid, ...metadata } })
}

function expectOk (reply: Reply): { profileId: string, action: string } {
  expect(reply.statusCode, reply.body).toBe(200)
  const { data } = reply.json<{ data: { profileId: string, action: string } }>()
  expect(data.profileId).toMatch(/^[0-9a-f]{24}$/)
  return data
}


/** One request's metadata, as a shallow merge applies it. */
interface Write {
  id: number
  fields: Metadata
}

const applyWrites = (initial: Metadata, writes: readonly Write[]): Metadata =>
  writes.reduce<Metadata>((state, write) => ({ ...state, ...write.fields }), { ...initial })

/**
 * Looks for a serial order of `writes` that turns `initial` into `final` by
 * shallow merges; returns the ids in that order, or null when none exists.
 *
 * Each field's final value names its last writer (every write must give each
 * of its fields a value no other write gives that field, so that the writer
 * is known). Every other write of that field must come before it: an order
 * exists exactly when these "comes before" edges have no cycle. A field no
 * write sent must still hold its initial value. The order found is replayed
 * as a last check.
 */
function findSerialOrder (initial: Metadata, writes: readonly Write[], final: Metadata): number[] | null {
  const byId = new Map(writes.map((write) => [write.id, write]))
  if (byId.size !== writes.length) throw new Error('write ids must be unique')
  const before = new Map<number, Set<number>>(writes.map((write) => [write.id, new Set<number>()]))
  const names = new Set([...Object.keys(initial), ...Object.keys(final), ...writes.flatMap((write) => Object.keys(write.fields))])

  for (const name of names) {
    const writers = writes.filter((write) => Object.hasOwn(write.fields, name))
    if (writers.length === 0) {
      if (Object.hasOwn(initial, name) !== Object.hasOwn(final, name) || !isDeepStrictEqual(initial[name], final[name])) return null
      continue
    }
    for (const [index, writer] of writers.entries()) {
      if (writers.slice(index + 1).some((other) => isDeepStrictEqual(other.fields[name], writer.fields[name]))) {
        throw new Error(`two writes send the same value for ${name}: the last writer cannot be told`)
      }
    }
    if (!Object.hasOwn(final, name)) return null
    const last = writers.find((write) => isDeepStrictEqual(write.fields[name], final[name]))
    if (last === undefined) return null
    for (const writer of writers) if (writer !== last) before.get(last.id)!.add(writer.id)
  }

  // Kahn's algorithm: repeatedly take a write whose predecessors are all placed.
  const order: number[] = []
  const placed = new Set<number>()
  while (order.length < writes.length) {
    const next = writes.find((write) => !placed.has(write.id) && [...before.get(write.id)!].every((id) => placed.has(id)))
    if (next === undefined) return null
    placed.add(next.id)
    order.push(next.id)
  }
  const replayed = applyWrites(initial, order.map((id) => byId.get(id)!))
  if (!isDeepStrictEqual(replayed, final)) throw new Error('internal: the order found does not replay to the final state')
  return order
}

describe('the serial-order checker itself', () => {
  const full = (id: number): Write => ({ id, fields: { a: id, b: id, c: id } })

  it('accepts full overwrites that all come from one request, and names that request last', () => {
    const writes = [full(1), full(2), full(3)]
    const order = findSerialOrder({ a: 0, b: 0, c: 0, keep: 'x' }, writes, { a: 2, b: 2, c: 2, keep: 'x' })
    expect(order).not.toBeNull()
    expect(order!.at(-1)).toBe(2)
  })

  it('rejects full overwrites mixed from two requests (a lost or torn update)', () => {
    expect(findSerialOrder({}, [full(1), full(2)], { a: 1, b: 2, c: 2 })).toBeNull()
    expect(findSerialOrder({}, [full(1), full(2)], { a: 1, b: 1 })).toBeNull()
  })

  it('rejects a value no request sent, a field lost, and an untouched field that changed', () => {
    expect(findSerialOrder({ a: 0 }, [full(1)], { a: 0, b: 1, c: 1 })).toBeNull()
    expect(findSerialOrder({ keep: 'x' }, [full(1)], { a: 1, b: 1, c: 1 })).toBeNull()
    expect(findSerialOrder({ keep: 'x' }, [full(1)], { a: 1, b: 1, c: 1, keep: 'y' })).toBeNull()
    expect(findSerialOrder({}, [full(1)], { a: 1, b: 1, c: 1, extra: 1 })).toBeNull()
  })

  it('accepts subsets whose last writers respect one order, and rejects a cycle', () => {
    const writes: Write[] = [full(1), { id: 2, fields: { a: 2, b: 2 } }, { id: 3, fields: { b: 3, c: 3 } }]
    // 1, 2, 3: a from 2, b and c from 3.
    expect(findSerialOrder({}, writes, { a: 2, b: 3, c: 3 })).toEqual([1, 2, 3])
    // 3, 1, 2: a and b from 2, c from 1.
    expect(findSerialOrder({}, writes, { a: 2, b: 2, c: 1 })).toEqual([3, 1, 2])
    // a from 2 needs 1 before 2; b from 3 needs 2 before 3; c from 1 needs 3 before 1: a cycle.
    expect(findSerialOrder({}, writes, { a: 2, b: 3, c: 1 })).toBeNull()
  })
})

describe('concurrent identifies of one new user', () => {
  it('200 visitors at once: all answer 200 with one profile, every visitor linked, exactly one created; the losing inserts retry', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vids = Array.from({ length: 200 }, () => visitorId())
    const race = races.since()
    const replies = await Promise.all(vids.map(async (vid) => await call(site, userId, vid)))
    // The pool ran the calls side by side, and the profile's insert raced: the calls that lost it went round upsertProfile's loop again.
    expect(race.connections()).toBeGreaterThanOrEqual(8)
    expect(race.duplicateKeys('insert profiles')).toBeGreaterThan(0)

    const results = replies.map(expectOk)
    expect(new Set(results.map((result) => result.profileId)).size).toBe(1)
    const actions = results.map((result) => result.action)
    expect(actions.filter((action) => action === 'created'), actions.join(',')).toHaveLength(1)
    expect(actions.filter((action) => action !== 'created' && action !== 'updated'), actions.join(',')).toHaveLength(0)

    expect(await profiles.countDocuments({ websiteId: new ObjectId(site.websiteId), userId })).toBe(1)
    expect(await profiles.countDocuments({ websiteId: new ObjectId(site.websiteId) })).toBe(1)
    const profile = await app.repositories.profiles.findProfile(site.websiteId, userId)
    expect(profile).not.toBeNull()
    expect(profile!.id).toBe(results[0]!.profileId)
    expect([...profile!.visitorIds].sort()).toEqual([...vids].sort())
    // One link document per visitor, each pointing at the profile.
    const stored = await links.find({ websiteId: new ObjectId(site.websiteId) }).toArray()
    expect(stored).toHaveLength(200)
    expect(new Set(stored.map((link) => String(link.visitorId))).size).toBe(200)
    for (const link of stored) expect((link.profileId as ObjectId).toHexString()).toBe(profile!.id)
  }, 120_000)
})

describe('one visitor identified as several users at once', () => {
  /** The profile holding the visitor, from its one link document; also that no other of these users' profiles lists it. */
  async function holderOf (site: TestWebsite, vid: string, userIds: readonly string[], label: string): Promise<string> {
    const stored = await links.find({ websiteId: new ObjectId(site.websiteId), visitorId: vid }).toArray()
    expect(stored, label).toHaveLength(1)
    const holder = (stored[0]!.profileId as ObjectId).toHexString()
    const listing = await Promise.all(userIds.map(async (userId) => await app.repositories.profiles.findProfile(site.websiteId, userId)))
    expect(listing.filter((profile) => profile?.visitorIds.includes(vid) === true).map((profile) => profile!.id), label).toEqual([holder])
    return holder
  }

  it('a new visitor and 8 new users, 20 rounds: all answer 200, and the visitor ends on one of them; the link upserts raced', async () => {
    const site = await createTestWebsite(app)
    const race = races.since()
    for (let round = 0; round < 20; round++) {
      const vid = visitorId()
      const userIds = Array.from({ length: 8 }, newUserId)
      const replies = await Promise.all(userIds.map(async (userId) => await call(site, userId, vid, { round })))
      const profileIds = replies.map((reply) => expectOk(reply).profileId)
      expect(profileIds).toContain(await holderOf(site, vid, userIds, `round ${String(round)}`))
    }
    // The visitor's link was written by several calls at once.
    expect(race.overlaps('findAndModify visitorLinks')).toBeGreaterThan(0)
  }, 120_000)

  it('one visitor and two new users per round: it ends on exactly one of them, so the users of earlier rounds lost it', async () => {
    const site = await createTestWebsite(app)
    const vid = visitorId()
    const race = races.since()
    for (let round = 0; round < 20; round++) {
      const [first, second] = [newUserId(), newUserId()]
      const replies = await Promise.all([call(site, first, vid, { round }), call(site, second, vid, { round })])
      const profileIds = replies.map((reply) => expectOk(reply).profileId)
      // The visitor's one link points at this round's winner: no earlier user holds it any more.
      expect(profileIds).toContain(await holderOf(site, vid, [first, second], `round ${String(round)}`))
    }
    expect(race.overlaps('findAndModify visitorLinks')).toBeGreaterThan(0)
  }, 120_000)

  it('ends linked to exactly one when both users already exist and the visitor is on a third', async () => {
    const site = await createTestWebsite(app)
    const race = races.since()
    for (let round = 0; round < 10; round++) {
      const vid = visitorId()
      const [owner, first, second] = [newUserId(), newUserId(), newUserId()]
      expectOk(await call(site, owner, vid))
      const firstId = expectOk(await call(site, first, visitorId())).profileId
      const secondId = expectOk(await call(site, second, visitorId())).profileId
      const replies = await Promise.all([call(site, first, vid), call(site, second, vid)])
      for (const reply of replies) expect(expectOk(reply).action).toBe('updated')
      expect([firstId, secondId]).toContain(await holderOf(site, vid, [owner, first, second], `round ${String(round)}`))
    }
    expect(race.overlaps('findAndModify visitorLinks')).toBeGreaterThan(0)
  }, 120_000)
})

describe('concurrent metadata updates of one profile', () => {
  /** 20 full overwrites {a, b, c} and 12 subsets, each giving every field it sends its own id as the value. */
  function makeWrites (): Write[] {
    const subsets = [['a'], ['b'], ['c'], ['a', 'b'], ['b', 'c'], ['a', 'c'], ['a', 'd'], ['d'], ['c', 'd'], ['a', 'b', 'd'], ['b'], ['a', 'c', 'd']]
    const writes: Write[] = Array.from({ length: 20 }, (_, index) => ({ id: index, fields: { a: index, b: index, c: index } }))
    subsets.forEach((names, index) => {
      const id = 100 + index
      writes.push({ id, fields: Object.fromEntries(names.map((name) => [name, id])) })
    })
    // Interleave the subsets among the full writes.
    return writes.sort((x, y) => (x.id % 7) - (y.id % 7) || x.id - y.id)
  }

  const rounds = 5

  it(`an existing profile: the final metadata is that of some serial order (${String(rounds)} rounds)`, async () => {
    const site = await createTestWebsite(app)
    const race = races.since()
    for (let round = 0; round < rounds; round++) {
      const userId = newUserId()
      const vid = visitorId()
      const initial: Metadata = { a: -1, b: -1, c: -1, keep: 'me' }
      expect(expectOk(await call(site, userId, vid, initial)).action).toBe('created')
      const writes = makeWrites()
      const replies = await Promise.all(writes.map(async (write) => await call(site, userId, vid, write.fields)))
      // Every request sends values no other holds, so every one changes something.
      for (const reply of replies) expect(expectOk(reply).action).toBe('updated')

      const { metadata } = (await app.repositories.profiles.findProfile(site.websiteId, userId))!
      const order = findSerialOrder(initial, writes, metadata)
      expect(order, `round ${String(round)}: no serial order gives ${JSON.stringify(metadata)}`).not.toBeNull()
    }
    // The profile's merges ran side by side.
    expect(race.overlaps('findAndModify profiles')).toBeGreaterThan(0)
  }, 120_000)

  it(`a new profile created by the concurrent calls themselves: some serial order (${String(rounds)} rounds)`, async () => {
    const site = await createTestWebsite(app)
    const race = races.since()
    for (let round = 0; round < rounds; round++) {
      const userId = newUserId()
      const writes = makeWrites()
      const vids = writes.map(() => visitorId())
      const replies = await Promise.all(writes.map(async (write, index) => await call(site, userId, vids[index]!, write.fields)))
      const actions = replies.map((reply) => expectOk(reply).action)
      expect(actions.filter((action) => action === 'created')).toHaveLength(1)

      const profile = (await app.repositories.profiles.findProfile(site.websiteId, userId))!
      expect([...profile.visitorIds].sort()).toEqual([...vids].sort())
      const order = findSerialOrder({}, writes, profile.metadata)
      expect(order, `round ${String(round)}: no serial order gives ${JSON.stringify(profile.metadata)}`).not.toBeNull()
    }
    // The profile's insert raced, and so did its updates listing the visitors.
    expect(race.duplicateKeys('insert profiles')).toBeGreaterThan(0)
    expect(race.overlaps('update profiles')).toBeGreaterThan(0)
  }, 120_000)
})
