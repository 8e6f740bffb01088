import { MongoServerError, ObjectId } from 'mongodb'
import { afterAll, describe, expect, it } from 'vitest'
import { identifyRules } from '../src/config.js'
import { ProfilesRepository, profileIdFor } from '../src/storage/repositories/profiles.js'
import { buildTestApp, createTestWebsite, identify, RETRY_AFTER, testDatabaseUrl, visitorId, withConnectionOptions, type TestWebsite } from './helper.js'
import { profilesCall, watchRaces } from './profiles-helper.js'

/*
 * docs/api.md#profiles-erasure-and-identify-at-once: an identify call racing
 * with an erasure of its profile ends either before it (and is erased with
 * it) or after it (on a new profile), never with a profile that lists a
 * visitor without its link, or a link to a missing or erased profile.
 *
 * The calls run side by side on the app's connection pool, and each test
 * counts the race it is about: an erasure's delete in flight with other
 * writes of its profile (command monitoring), or the retries that an
 * interleaving chosen on purpose forces.
 */

const app = await buildTestApp({ MONGO_URL: withConnectionOptions(testDatabaseUrl(), { monitorCommands: 'true' }) })
afterAll(async () => { await app.close() })
const races = watchRaces(app.mongo.client)
/** An erasure's delete of a profile. */
const ERASURE_DELETE = 'delete profiles'

interface StoredProfile { _id: ObjectId, userId: string, incarnation: ObjectId, metadata: Record<string, unknown> }
interface StoredLink { _id: string, visitorId: string, profileId: ObjectId, profileIncarnation: ObjectId }
const profiles = app.mongo.db.collection<StoredProfile>('profiles')
const links = app.mongo.db.collection<StoredLink>('visitorLinks')
const sorted = (values: string[]): string[] => [...values].sort()

let counter = 0
const newUserId = (): string => `erasure_race_${String(++counter)}`

async function call (site: TestWebsite, userId: string, visitor: string, metadata: Record<string, unknown> = {}): Promise<string> {
  const response = await identify(app, { auth: site.key, body: { user_id: userId, datafast_visitor_id: visitor, ...metadata } })
  expect(response.statusCode, response.body).toBe(200)
  return response.json<{ data: { action: string } }>().data.action
}

async function erase (site: TestWebsite, userId: string): Promise<number> {
  const response = await profilesCall(app, { method: 'DELETE', path: `/profiles/${profileIdFor(site.websiteId, userId).toHexString()}`, auth: site.key })
  expect([200, 404], response.body).toContain(response.statusCode)
  return response.statusCode
}

/** Runs the calls at once, each started after a few turns of the event loop so that their commands interleave differently. */
async function atOnce (calls: Array<() => Promise<unknown>>): Promise<void> {
  await Promise.all(calls.map(async (run, index) => {
    for (let turn = 0; turn < index % 4; turn++) await new Promise((resolve) => setImmediate(resolve))
    await run()
  }))
}

/**
 * Every link of the website points at a stored profile of the same
 * incarnation, and every profile shows exactly the visitors linked to it;
 * returns the visitor ids each user's profile shows.
 */
async function expectConsistent (site: TestWebsite, context: string): Promise<Map<string, { visitorIds: string[], metadata: Record<string, unknown> }>> {
  const websiteId = new ObjectId(site.websiteId)
  const [storedProfiles, storedLinks] = await Promise.all([profiles.find({ websiteId }).toArray(), links.find({ websiteId }).toArray()])
  const byId = new Map(storedProfiles.map((profile) => [profile._id.toHexString(), profile]))
  for (const link of storedLinks) {
    const profile = byId.get(link.profileId.toHexString())
    expect(profile, `${context}: visitor ${link.visitorId} is linked to a missing profile`).toBeDefined()
    expect(profile!.incarnation.equals(link.profileIncarnation), `${context}: visitor ${link.visitorId} is linked to an erased profile`).toBe(true)
  }
  const shown = new Map<string, { visitorIds: string[], metadata: Record<string, unknown> }>()
  for (const stored of storedProfiles) {
    const profile = (await app.repositories.profiles.findProfile(site.websiteId, stored.userId))!
    const linked = storedLinks.filter((link) => link.profileId.equals(stored._id)).map((link) => link.visitorId)
    expect(sorted(profile.visitorIds), `${context}: the profile of ${stored.userId} does not show exactly its links`).toEqual(sorted(linked))
    shown.set(stored.userId, { visitorIds: profile.visitorIds, metadata: profile.metadata })
  }
  return shown
}

describe('identify calls racing with erasures of their profile', () => {
  it('each call ends wholly before an erasure or wholly after it: its field is stored exactly when its visitor is linked', async () => {
    const site = await createTestWebsite(app)
    const race = races.since()
    for (let round = 0; round < 12; round++) {
      const userId = newUserId()
      const known = visitorId()
      await call(site, userId, known, { seed: true })
      const fresh = Array.from({ length: 8 }, () => visitorId())
      const erasures: number[] = []
      await atOnce([
        ...fresh.map((visitor, index) => async () => await call(site, userId, visitor, { [`f${String(index)}`]: index })),
        // The update path: a known visitor with a new field.
        async () => await call(site, userId, known, { g: round }),
        async () => { erasures.push(await erase(site, userId)) },
        async () => { erasures.push(await erase(site, userId)) }
      ])
      expect(erasures, 'an erasure came first, the other found the profile gone or created again').toContain(200)

      const shown = (await expectConsistent(site, `round ${String(round)}`)).get(userId)
      fresh.forEach((visitor, index) => {
        const field = Object.hasOwn(shown?.metadata ?? {}, `f${String(index)}`)
        const linked = shown?.visitorIds.includes(visitor) === true
        expect(field, `round ${String(round)}, call ${String(index)}: field stored ${String(field)} but visitor linked ${String(linked)}`).toBe(linked)
      })
      // The known visitor's call only merges metadata (see the chosen interleavings below): checked by expectConsistent alone.
      // Nothing of the erased profile survives in a new one.
      expect(shown?.metadata.seed).toBeUndefined()
    }
    expect(race.overlaps(ERASURE_DELETE)).toBeGreaterThan(0)
  }, 180_000)

  it('the first calls for a new user racing with erasures leave a consistent state', async () => {
    const site = await createTestWebsite(app)
    const race = races.since()
    for (let round = 0; round < 12; round++) {
      const userId = newUserId()
      const visitors = Array.from({ length: 6 }, () => visitorId())
      await atOnce([
        ...visitors.map((visitor, index) => async () => await call(site, userId, visitor, { [`f${String(index)}`]: index })),
        async () => await erase(site, userId),
        async () => await erase(site, userId)
      ])
      const shown = (await expectConsistent(site, `round ${String(round)}`)).get(userId)
      visitors.forEach((visitor, index) => {
        expect(Object.hasOwn(shown?.metadata ?? {}, `f${String(index)}`), `round ${String(round)}, call ${String(index)}`)
          .toBe(shown?.visitorIds.includes(visitor) === true)
      })
    }
    expect(race.overlaps(ERASURE_DELETE)).toBeGreaterThan(0)
  }, 180_000)

  it('a visitor moving between two users while one of them is erased ends on at most one profile, with its link', async () => {
    const site = await createTestWebsite(app)
    const race = races.since()
    for (let round = 0; round < 12; round++) {
      const [first, second] = [newUserId(), newUserId()]
      const shared = visitorId()
      await call(site, first, shared)
      await call(site, second, visitorId())
      await atOnce([
        async () => await call(site, second, shared),
        async () => await call(site, first, shared),
        async () => await erase(site, first),
        async () => await call(site, second, shared, { again: round })
      ])
      const shown = await expectConsistent(site, `round ${String(round)}`)
      const holders = [...shown.values()].filter((profile) => profile.visitorIds.includes(shared))
      expect(holders.length, `round ${String(round)}`).toBeLessThanOrEqual(1)
    }
    expect(race.overlaps(ERASURE_DELETE)).toBeGreaterThan(0)
  }, 180_000)

  it('an erasure racing updates of its profile answers success once that profile is gone, never 404 (docs/api.md#profiles-erasure)', async () => {
    const site = await createTestWebsite(app)
    const race = races.since()
    for (let round = 0; round < 20; round++) {
      const userId = newUserId()
      const _id = profileIdFor(site.websiteId, userId)
      const visitors = Array.from({ length: 6 }, () => visitorId())
      for (const visitor of visitors) await call(site, userId, visitor)
      const { incarnation } = (await profiles.findOne({ _id }))!
      const state = { erased: false }
      // Each known visitor's call changes a field: a plain update of the profile, over and over until the erasure answers.
      const updating = visitors.map(async (visitor, index) => {
        for (let n = 0; !state.erased; n++) await call(site, userId, visitor, { [`u${String(index)}`]: n })
      })
      try {
        await new Promise((resolve) => setTimeout(resolve, 10))
        expect(await erase(site, userId), `round ${String(round)}`).toBe(200)
        expect(await profiles.countDocuments({ _id, incarnation }), `round ${String(round)}: the erased profile stays`).toBe(0)
      } finally {
        state.erased = true
        await Promise.all(updating)
      }
      await expectConsistent(site, `round ${String(round)}`)
    }
    expect(race.overlaps(ERASURE_DELETE)).toBeGreaterThan(0)
  }, 180_000)
})

describe('a batch racing with single calls and erasures (docs/api.md#batch-identify-how-it-is-stored)', () => {
  const limits = identifyRules(app.config).limits
  const entry = (userId: string, visitor: string, metadata: Record<string, unknown> = {}) =>
    ({ userId, visitorId: visitor, change: { set: metadata, setOnce: {}, unset: [] } })

  it('a new user of the batch created by another call between the batch\'s read and its insert: the insert finds it taken, and the batch runs again and merges into it', async () => {
    const site = await createTestWebsite(app)
    const [userId, bystander] = [newUserId(), newUserId()]
    const [visitor, other, third] = [visitorId(), visitorId(), visitorId()]
    const { repository, holdBefore, calls } = pausableRepository()
    const held = await holdBefore('profiles', 'insertMany', async () =>
      await repository.upsertProfiles(site.websiteId, [entry(userId, visitor, { f: 1 }), entry(bystander, third, { b: 1 })], limits))
    expect(await call(site, userId, other, { g: 2 })).toBe('created')
    held.release()
    // Not created by the batch: the other call did.
    expect(await held.done).toMatchObject([{ created: false, changed: true }, { created: true }])
    // The batch ran again, one entry at a time: each try of an entry starts with the merge of a listed visitor.
    expect(calls('profiles', 'findOneAndUpdate')).toBeGreaterThan(0)
    const shown = await expectConsistent(site, 'after')
    expect(shown.get(userId)).toEqual({ visitorIds: [other, visitor], metadata: { g: 2, f: 1 } })
    expect(shown.get(bystander)).toEqual({ visitorIds: [third], metadata: { b: 1 } })
  })

  it('a batch whose run again loses every try of an entry gives up whole: the contention reaches the caller (a 503), not the item', async () => {
    const site = await createTestWebsite(app)
    const [userId, bystander] = [newUserId(), newUserId()]
    const [visitor, other, third] = [visitorId(), visitorId(), visitorId()]
    const loser = pausableRepository()
    const held = await loser.holdBefore('profiles', 'insertMany', async () =>
      await loser.repository.upsertProfiles(site.websiteId, [entry(userId, visitor, { f: 1 }), entry(bystander, third)], limits))
    expect(await call(site, userId, other)).toBe('created')
    // Every try of the run again finds its profile erased, as the single call's give-up does.
    loser.missNext('erasedIncarnations', 'findOne', { _id: new ObjectId() }, 1_000)
    loser.missNext('profiles', 'findOneAndUpdate', null, 1_000)
    held.release()
    await expect(held.done).rejects.toMatchObject({ kind: 'contended' })
  })

  it('a profile erased and created again between the batch\'s read and its update: the update misses the new profile, and the batch ends on it', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const [first, device, other] = [visitorId(), visitorId(), visitorId()]
    await call(site, userId, first, { seed: true })
    const { repository, holdBefore, holdNext, calls } = pausableRepository()
    const held = await holdBefore('visitorLinks', 'insertMany', async () =>
      await repository.upsertProfiles(site.websiteId, [entry(userId, device, { f: 1 })], limits))
    expect(await erase(site, userId)).toBe(200)
    expect(await call(site, userId, other)).toBe('created')
    // Held again where the batch runs its entries one by one, after its bulk writes.
    const redoing = holdNext('profiles', 'findOneAndUpdate')
    held.release()
    await redoing.reached
    // Its update, by the incarnation read, left the new profile as it was: never listing a visitor without its link.
    expect(await profiles.findOne({ _id: profileIdFor(site.websiteId, userId) })).toMatchObject({ metadata: {}, visitorIds: [other] })
    redoing.release()
    await held.done
    expect(calls('profiles', 'findOneAndUpdate')).toBeGreaterThan(0)
    expect((await expectConsistent(site, 'after')).get(userId)).toEqual({ visitorIds: [other, device], metadata: { f: 1 } })
  })

  it.each(['new (the batch inserts it)', 'known (the batch updates it)'])('a visitor moved by another call between the batch\'s read and its link write, the batch\'s user %s: the batch marks the profile it took the visitor from', async (kind) => {
    const site = await createTestWebsite(app)
    const [owner, thief, batchUser] = [newUserId(), newUserId(), newUserId()]
    const shared = visitorId()
    await call(site, owner, shared)
    await call(site, thief, visitorId())
    if (kind.startsWith('known')) await call(site, batchUser, visitorId())
    const { repository, holdBefore, calls } = pausableRepository()
    const held = await holdBefore('visitorLinks', 'bulkWrite', async () =>
      await repository.upsertProfiles(site.websiteId, [entry(batchUser, visitorId()), entry(batchUser, shared)], limits))
    expect(await call(site, thief, shared)).toBe('updated')
    held.release()
    await held.done
    // The bulk move found the link moved meanwhile and moved it alone, learning whom it left.
    expect(calls('visitorLinks', 'findOneAndUpdate')).toBeGreaterThan(0)
    const shown = await expectConsistent(site, 'after')
    expect(shown.get(batchUser)?.visitorIds).toContain(shared)
    expect(shown.get(thief)?.visitorIds).not.toContain(shared)
    expect(shown.get(owner)?.visitorIds).toEqual([])
  })

  it('batches of the same users in opposite orders at once all succeed and leave a consistent state (DocumentDB can deadlock their bulk writes)', async () => {
    const site = await createTestWebsite(app)
    const users = Array.from({ length: 50 }, () => newUserId())
    const visitors = users.map(() => visitorId())
    await app.repositories.profiles.upsertProfiles(site.websiteId, users.map((userId, n) => entry(userId, visitors[n]!)), limits)
    const race = races.since()
    for (let round = 1; round <= 6; round++) {
      const updates = users.map((userId, n) => entry(userId, visitors[n]!, { round, n }))
      // Every visitor moves to the next user: links move, and the profiles they leave are marked.
      const moves = users.map((userId, n) => entry(userId, visitors[(n + round) % visitors.length]!, { moved: round }))
      const batches = [updates, [...updates].reverse(), moves, [...moves].reverse()]
      const settled = await Promise.allSettled(batches.map(async (entries) => await app.repositories.profiles.upsertProfiles(site.websiteId, entries, limits)))
      expect(settled.filter(({ status }) => status === 'rejected'), `round ${String(round)}`).toEqual([])
      await expectConsistent(site, `round ${String(round)}`)
    }
    expect(race.overlaps('update profiles')).toBeGreaterThan(0)
    expect(race.overlaps('update visitorLinks')).toBeGreaterThan(0)
  }, 180_000)

  it('batches, single calls and erasures at once leave a consistent state', async () => {
    const site = await createTestWebsite(app)
    const users = Array.from({ length: 4 }, () => newUserId())
    const visitors = Array.from({ length: 6 }, () => visitorId())
    const pick = <T>(values: T[], n: number): T => values[n % values.length]!
    const race = races.since()
    for (let round = 0; round < 8; round++) {
      const batchEntries = Array.from({ length: 8 }, (_, n) => entry(pick(users, n + round), pick(visitors, n * 5 + round), { [`r${String(round)}`]: n }))
      await atOnce([
        async () => await app.repositories.profiles.upsertProfiles(site.websiteId, batchEntries, limits),
        async () => await call(site, pick(users, round), pick(visitors, round + 1), { single: round }),
        async () => await erase(site, pick(users, round + 2)),
        async () => await app.repositories.profiles.upsertProfiles(site.websiteId, batchEntries.slice(3), limits),
        async () => await call(site, pick(users, round + 3), pick(visitors, round))
      ])
      await expectConsistent(site, `round ${String(round)}`)
    }
    // Batches raced each other on the same profiles, and erasures raced the batches.
    expect(race.overlaps('update profiles')).toBeGreaterThan(0)
    expect(race.overlaps(ERASURE_DELETE)).toBeGreaterThan(0)
  }, 180_000)
})

/**
 * The repository on the same database, whose next call of one method on one
 * collection waits until the test releases it: an interleaving chosen on
 * purpose, on the real database. It counts the calls of each method, so that
 * a test sees the retries its interleaving forces.
 */
function pausableRepository () {
  const asyncMethods = new Set(['findOne', 'findOneAndUpdate', 'insertOne', 'updateOne', 'updateMany', 'deleteMany', 'insertMany', 'bulkWrite'])
  let gate: { collection: string, method: string, reached: () => void, released: Promise<void> } | null = null
  let failure: { collection: string, method: string, error: Error } | null = null
  const misses: Array<{ collection: string, method: string, answer: unknown, times: number }> = []
  const calls = new Map<string, number>()
  const db = new Proxy(app.mongo.db, {
    get (target, property, receiver) {
      if (property !== 'collection') return Reflect.get(target, property, receiver) as unknown
      return (name: string) => new Proxy(target.collection(name), {
        get (collection, method, collectionReceiver) {
          const value = Reflect.get(collection, method, collectionReceiver) as unknown
          if (typeof value !== 'function' || !asyncMethods.has(String(method))) return value
          return async (...args: unknown[]) => {
            calls.set(`${name}.${String(method)}`, (calls.get(`${name}.${String(method)}`) ?? 0) + 1)
            if (failure?.collection === name && failure.method === method) {
              const { error } = failure
              failure = null
              throw error
            }
            const miss = misses.find((candidate) => candidate.collection === name && candidate.method === method)
            if (miss !== undefined) {
              if (--miss.times === 0) misses.splice(misses.indexOf(miss), 1)
              return miss.answer
            }
            if (gate?.collection === name && gate.method === method) {
              const { reached, released } = gate
              gate = null
              reached()
              await released
            }
            return await (value as (...parameters: unknown[]) => Promise<unknown>).apply(collection, args)
          }
        }
      })
    }
  })
  /** Holds the next `method` on `collection`: `reached` resolves once a call got there, `release` lets it go on. */
  const holdNext = (collection: string, method: string): { reached: Promise<void>, release: () => void } => {
    let release!: () => void
    const released = new Promise<void>((resolve) => { release = resolve })
    const reached = new Promise<void>((resolve) => { gate = { collection, method, reached: resolve, released } })
    return { reached, release }
  }
  return {
    repository: new ProfilesRepository(db),
    /** How many times the repository called `method` on `collection`. */
    calls: (collection: string, method: string): number => calls.get(`${collection}.${method}`) ?? 0,
    /** Fails the next `method` on `collection`, by default as a database lost at that moment would. */
    failNext: (collection: string, method: string, error = new Error(`${collection}.${method} failed (test)`)): void => { failure = { collection, method, error } },
    /** Answers the next `method` on `collection` (the next `times` ones) with `answer` without sending it. */
    missNext: (collection: string, method: string, answer: unknown, times = 1): void => { misses.push({ collection, method, answer, times }) },
    holdNext,
    /** Starts a call and holds its next `method` on `collection`; resolves once it got there, with the function that lets it go on. */
    holdBefore: async (collection: string, method: string, start: () => Promise<unknown>): Promise<{ release: () => void, done: Promise<unknown> }> => {
      const { reached, release } = holdNext(collection, method)
      const done = start()
      await reached
      return { release, done }
    }
  }
}

describe('chosen interleavings of identify and erasure', () => {
  const limits = identifyRules(app.config).limits
  const input = (site: TestWebsite, userId: string, visitor: string, metadata: Record<string, unknown> = {}) =>
    ({ websiteId: site.websiteId, userId, visitorId: visitor, metadata, limits })
  /** The attempts of upsertProfile after its first: each starts with the merge of a listed visitor, which reads the profile. */
  const retries = (repository: ReturnType<typeof pausableRepository>): number => repository.calls('profiles', 'findOneAndUpdate') - 1
  /** A creation of the user with `{ f: 1 }`, held after its insert, before it links the visitor. */
  const holdBeforeLinking = async (site: TestWebsite, userId: string, visitor: string) => {
    const creator = pausableRepository()
    const held = await creator.holdBefore('visitorLinks', 'findOneAndUpdate', async () => await creator.repository.upsertProfile(input(site, userId, visitor, { f: 1 })))
    return { creator, held }
  }

  it('an erasure between creating a profile and linking its first visitor: the call creates the profile again', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const visitor = visitorId()
    const { creator, held } = await holdBeforeLinking(site, userId, visitor)
    expect(await erase(site, userId)).toBe(200)
    held.release()
    expect(await held.done).toMatchObject({ created: true })
    expect(retries(creator)).toBeGreaterThan(0)
    const shown = (await expectConsistent(site, 'after')).get(userId)
    expect(shown).toEqual({ visitorIds: [visitor], metadata: { f: 1 } })
  })

  it('an erasure and a new profile between creating a profile and linking: the call ends on the new profile', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const [visitor, other] = [visitorId(), visitorId()]
    const { creator, held } = await holdBeforeLinking(site, userId, visitor)
    expect(await erase(site, userId)).toBe(200)
    expect(await call(site, userId, other, { g: 2 })).toBe('created')
    held.release()
    expect(await held.done).toMatchObject({ changed: true })
    expect(retries(creator)).toBeGreaterThan(0)
    const shown = (await expectConsistent(site, 'after')).get(userId)
    expect(shown).toEqual({ visitorIds: [other, visitor], metadata: { g: 2, f: 1 } })
  })

  it('an erasure and a new profile of the same visitor between creating a profile and linking: the late link leaves the new profile, which gives its list up, and the call links again', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const visitor = visitorId()
    const { creator, held } = await holdBeforeLinking(site, userId, visitor)
    expect(await erase(site, userId)).toBe(200)
    // Another call of the same visitor creates the profile again, listing and linking it.
    expect(await call(site, userId, visitor, { g: 2 })).toBe('created')
    held.release()
    // The late link points at the erased profile: the new one stops trusting its list, so the call's next try sees the link and links again.
    expect(await held.done).toMatchObject({ created: false, changed: true })
    expect(retries(creator)).toBeGreaterThan(0)
    const shown = (await expectConsistent(site, 'after')).get(userId)
    expect(shown).toEqual({ visitorIds: [visitor], metadata: { g: 2, f: 1 } })
  })

  it('an erasure and a new profile between linking a new device and listing it: the call ends on the new profile', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const [first, device, other] = [visitorId(), visitorId(), visitorId()]
    await call(site, userId, first)
    const caller = pausableRepository()
    const held = await caller.holdBefore('profiles', 'updateOne', async () => await caller.repository.upsertProfile(input(site, userId, device, { f: 1 })))
    expect(await erase(site, userId)).toBe(200)
    expect(await call(site, userId, other)).toBe('created')
    held.release()
    await held.done
    expect(retries(caller)).toBeGreaterThan(0)
    const shown = (await expectConsistent(site, 'after')).get(userId)
    expect(shown).toEqual({ visitorIds: [other, device], metadata: { f: 1 } })
  })

  it('an erasure and a new profile between reading and merging the metadata of a visitor known by its link: the merge lands on the new profile, which does not list the visitor', async () => {
    const site = await createTestWebsite(app)
    const [userId, elsewhere] = [newUserId(), newUserId()]
    const [known, leaver, other] = [visitorId(), visitorId(), visitorId()]
    await call(site, userId, known, { f: 0 })
    // A visitor that leaves the profile gives its list up: from then on its links say who is on it, and a merge reads them first.
    await call(site, userId, leaver)
    await call(site, elsewhere, leaver)
    const read = (await profiles.findOne({ _id: profileIdFor(site.websiteId, userId) }))!
    const { repository, holdBefore } = pausableRepository()
    const held = await holdBefore('profiles', 'updateOne', async () => await repository.upsertProfile(input(site, userId, known, { f: 1 })))
    expect(await erase(site, userId)).toBe(200)
    expect(await call(site, userId, other)).toBe('created')
    held.release()
    expect(await held.done).toMatchObject({ created: false, changed: true })
    // The profile the merge landed on is another incarnation than the one it read.
    expect((await profiles.findOne({ _id: read._id }))!.incarnation.equals(read.incarnation)).toBe(false)
    const shown = (await expectConsistent(site, 'after')).get(userId)
    expect(shown).toEqual({ visitorIds: [other], metadata: { f: 1 } })
  })

  it('a call that links a new profile\'s visitor while its erasure is under way ends either before or after it', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const visitor = visitorId()
    const creator = pausableRepository()
    const eraser = pausableRepository()
    const profileId = profileIdFor(site.websiteId, userId).toHexString()
    // The call has created the profile; the erasure has read it and stops just before recording its erasure.
    const created = await creator.holdBefore('visitorLinks', 'findOneAndUpdate', async () => await creator.repository.upsertProfile(input(site, userId, visitor, { f: 1 })))
    const erasing = await eraser.holdBefore('erasedIncarnations', 'insertOne', async () => await eraser.repository.eraseProfile(site.websiteId, profileId))
    created.release()
    await created.done
    erasing.release()
    // The link the call wrote after the erasure read the profile is erased with it.
    expect(await erasing.done).toEqual({ profileId, visitorLinks: 1 })
    const shown = (await expectConsistent(site, 'after')).get(userId)
    // Before: erased with the profile (the erasure deleted its links after recording it).
    expect(shown).toBeUndefined()
  })

  it('a call that created a profile and links its visitor after the whole erasure of it ends on a new profile', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const visitor = visitorId()
    const creator = pausableRepository()
    const created = await creator.holdBefore('visitorLinks', 'findOneAndUpdate', async () => await creator.repository.upsertProfile(input(site, userId, visitor, { f: 1 })))
    expect(await erase(site, userId)).toBe(200)
    created.release()
    expect(await created.done).toMatchObject({ created: true })
    expect(retries(creator)).toBeGreaterThan(0)
    const shown = (await expectConsistent(site, 'after')).get(userId)
    expect(shown).toEqual({ visitorIds: [visitor], metadata: { f: 1 } })
  })

  it('an erasure cut short after deleting the profile leaves its links only until the next erasure, which answers 404', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    await call(site, userId, visitorId())
    await call(site, userId, visitorId())
    const profileId = profileIdFor(site.websiteId, userId)
    const { repository, failNext } = pausableRepository()
    failNext('visitorLinks', 'deleteMany')
    await expect(repository.eraseProfile(site.websiteId, profileId.toHexString())).rejects.toThrow('failed (test)')
    expect(await links.countDocuments({ profileId })).toBe(2)
    expect(await erase(site, userId)).toBe(404)
    expect(await links.countDocuments({ profileId })).toBe(0)
    await expectConsistent(site, 'after')
  })

  it('a new profile created between an erasure\'s delete and its deletion of the links keeps its own links', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const [old, fresh] = [visitorId(), visitorId()]
    await call(site, userId, old)
    const { repository, holdBefore } = pausableRepository()
    const profileId = profileIdFor(site.websiteId, userId).toHexString()
    const held = await holdBefore('visitorLinks', 'deleteMany', async () => await repository.eraseProfile(site.websiteId, profileId))
    expect(await call(site, userId, fresh, { f: 1 })).toBe('created')
    // Links of both incarnations are there when the erasure deletes the links.
    expect(await links.countDocuments({ profileId: new ObjectId(profileId) })).toBe(2)
    held.release()
    expect(await held.done).toEqual({ profileId, visitorLinks: 1 })
    const shown = (await expectConsistent(site, 'after')).get(userId)
    expect(shown).toEqual({ visitorIds: [fresh], metadata: { f: 1 } })
  })

  it('a delete that matched nothing while the profile stays (as DocumentDB\'s deleteOne racing an update does) is confirmed by a read and sent again: the erasure answers success, never 404', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    await call(site, userId, visitorId())
    await call(site, userId, visitorId())
    const profileId = profileIdFor(site.websiteId, userId)
    const eraser = pausableRepository()
    eraser.missNext('profiles', 'deleteMany', { acknowledged: true, deletedCount: 0 })
    expect(await eraser.repository.eraseProfile(site.websiteId, profileId.toHexString())).toEqual({ profileId: profileId.toHexString(), visitorLinks: 2 })
    expect(eraser.calls('profiles', 'deleteMany')).toBe(2)
    expect(await profiles.countDocuments({ _id: profileId })).toBe(0)
    expect(await links.countDocuments({ profileId })).toBe(0)
  })

  it('an erasure whose deletion of the links lost a deadlock (DocumentDB\'s WriteConflict) deletes them again and answers success', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    await call(site, userId, visitorId())
    await call(site, userId, visitorId())
    const profileId = profileIdFor(site.websiteId, userId)
    const eraser = pausableRepository()
    eraser.failNext('visitorLinks', 'deleteMany', new MongoServerError({ code: 112, message: 'Could not acquire lock for operation due to deadlock' }))
    expect(await eraser.repository.eraseProfile(site.websiteId, profileId.toHexString())).toEqual({ profileId: profileId.toHexString(), visitorLinks: 2 })
    expect(eraser.calls('visitorLinks', 'deleteMany')).toBe(2)
    expect(await links.countDocuments({ profileId })).toBe(0)
  })

  it('a call that finds its profile erased at every try gives up after its tries: 503 with Retry-After, and nothing it linked stays', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const visitor = visitorId()
    const loser = pausableRepository()
    // The first try creates the profile and links the visitor, then finds a record of its erasure; every later
    // one finds no profile and cannot create it, as when other calls create it and erase it again in between.
    loser.missNext('erasedIncarnations', 'findOne', { _id: new ObjectId() }, 1_000)
    loser.missNext('profiles', 'findOneAndUpdate', null, 1_000)
    // The route holds the app's repository: its upsert is the loser's for this one call.
    const { profiles: repository } = app.repositories
    repository.upsertProfile = loser.repository.upsertProfile.bind(loser.repository)
    try {
      const response = await identify(app, { auth: site.key, body: { user_id: userId, datafast_visitor_id: visitor } })
      expect(response.statusCode, response.body).toBe(503)
      expect(response.headers['retry-after']).toMatch(RETRY_AFTER)
    } finally {
      Reflect.deleteProperty(repository, 'upsertProfile')
    }
    expect(loser.calls('profiles', 'findOneAndUpdate')).toBe(10)
    // Its last try is not undone: the profile and its link are whole, as the next call finds them.
    await expectConsistent(site, 'after')
    expect(await call(site, userId, visitor)).toBe('unchanged')
  })

  it('a link written to the erased incarnation after the erasure deleted the links is deleted before the erasure answers', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const visitor = visitorId()
    const profileId = profileIdFor(site.websiteId, userId)
    const creator = pausableRepository()
    const eraser = pausableRepository()
    // The call has created the profile; the erasure has deleted it and its links (none yet), and stops before confirming none is left.
    const created = await creator.holdBefore('visitorLinks', 'findOneAndUpdate', async () => await creator.repository.upsertProfile(input(site, userId, visitor, { f: 1 })))
    const incarnation = (await profiles.findOne({ _id: profileId }))!.incarnation
    const erasing = await eraser.holdBefore('visitorLinks', 'findOne', async () => await eraser.repository.eraseProfile(site.websiteId, profileId.toHexString()))
    // The call links its visitor to the erased incarnation, and stops before it looks for the erasure record.
    const checking = creator.holdNext('erasedIncarnations', 'findOne')
    created.release()
    await checking.reached
    expect(await links.countDocuments({ profileIncarnation: incarnation })).toBe(1)
    erasing.release()
    expect(await erasing.done).toEqual({ profileId: profileId.toHexString(), visitorLinks: 1 })
    expect(await links.countDocuments({ profileIncarnation: incarnation })).toBe(0)
    checking.release()
    expect(await created.done).toMatchObject({ created: true })
    expect(retries(creator)).toBeGreaterThan(0)
    expect((await expectConsistent(site, 'after')).get(userId)).toEqual({ visitorIds: [visitor], metadata: { f: 1 } })
  })
})
