import { MongoClient, ObjectId } from 'mongodb'
import { afterAll, describe, expect, it } from 'vitest'
import { DomainError } from '../src/domain/errors.js'
import { planMerge, type Metadata, type MetadataChange, type ProfileLimits } from '../src/domain/metadata.js'
import { listedMergePipeline } from '../src/storage/repositories/profile-merge.js'
import { testDatabaseUrl } from './helper.js'

/*
 * The one-command merge of identify's common call (docs/api.md#identify-how-it-is-stored)
 * is decided by the database; planMerge decides every other path. Both must
 * agree to the letter on whether a call changes anything, on the limits,
 * and on the metadata, field order included, on the real engine.
 */

const client = await MongoClient.connect(testDatabaseUrl())
afterAll(async () => {
  await client.db().dropDatabase()
  await client.close()
})
const profiles = client.db().collection<{ _id: ObjectId, userId: string, visitorIds?: string[], metadata: Metadata, updatedAt: Date, changeId?: ObjectId }>('profiles')

/** A small deterministic generator, so that a failure names a case that can be run again. */
function generator (seed: number) {
  let state = seed
  const next = (): number => {
    state = (state * 1103515245 + 12345) % 2147483648
    return state / 2147483648
  }
  return { pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T, chance: (p: number): boolean => next() < p }
}

// Values that compare equal or not in the ways jsonEqual names: key order, item order, numbers by value, types.
const VALUES: readonly unknown[] = [
  0, 1, 1.5, -0, 2 ** 31, 2 ** 53 - 1, -7, 'a', '', '$notAPath', 'ü 😀', '1', true, false, null,
  [], [1, 2], [2, 1], ['a', null], [{ a: 1, b: 2 }], [{ b: 2, a: 1 }], [{ a: 1 }, 3],
  {}, { a: 1, b: 2 }, { b: 2, a: 1 }, { a: { c: [1, { d: null }] } }, { a: { c: [1, { d: null }] }, e: '' }, { '$x': 1 }
]
const NAMES = ['a', 'b c', 'ü', 'x$y', 'k', '𝒳', 'n']

/** A value equal to `value` as JSON with its keys in another order, when it has keys. */
function reordered (value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reordered)
  if (typeof value !== 'object' || value === null) return value
  return Object.fromEntries(Object.entries(value).reverse().map(([key, item]) => [key, reordered(item)]))
}

function generatedCase (seed: number): { stored: Metadata, change: MetadataChange, limits: ProfileLimits } {
  const { pick, chance } = generator(seed)
  const stored: Metadata = {}
  for (const name of NAMES) if (chance(0.5)) stored[name] = pick(VALUES)
  const change: MetadataChange = { set: {}, setOnce: {}, unset: [] }
  for (const name of NAMES) {
    if (!chance(0.5)) continue
    const kind = pick(['set', 'same', 'once', 'unset'] as const)
    if (kind === 'unset') (change.unset as string[]).push(name)
    else if (kind === 'once') change.setOnce[name] = pick(VALUES)
    else change.set[name] = kind === 'same' && Object.hasOwn(stored, name) ? reordered(stored[name]) : pick(VALUES)
  }
  const fields = Object.keys(stored).length
  return { stored, change, limits: { profileMaxFields: pick([fields - 1, fields, fields + 1, 100]), profileMaxBytes: pick([20, 60, 120, 16_000]) } }
}

/** What planMerge says of the change: 'conflict' for a refused one, else whether it changes the metadata and into what. */
function planned (stored: Metadata, change: MetadataChange, limits: ProfileLimits): 'conflict' | { changed: boolean, merged: Metadata } {
  try {
    return planMerge(stored, change, limits)
  } catch (error) {
    if (error instanceof DomainError) return 'conflict'
    throw error
  }
}

async function merged (stored: Metadata, change: MetadataChange, limits: ProfileLimits, profile: { userId?: string, visitorIds?: string[] } = {}) {
  const _id = new ObjectId()
  const changeId = new ObjectId()
  const before = new Date(1_000)
  await profiles.insertOne({ _id, userId: profile.userId ?? 'user', visitorIds: profile.visitorIds ?? ['visitor'], metadata: stored, updatedAt: before })
  const now = new Date()
  const after = (await profiles.findOneAndUpdate({ _id }, listedMergePipeline({ userId: 'user', visitorId: 'visitor', change, limits, changeId, now }), { returnDocument: 'after' }))!
  const applied = after.changeId?.equals(changeId) === true
  expect(after.updatedAt.getTime()).toBe((applied ? now : before).getTime())
  return { applied, metadata: after.metadata }
}

describe('the merge the database decides, against planMerge', () => {
  it('agrees on 400 generated cases: whether it applies, the limits, and the merged metadata in its field order', async () => {
    const outcomes = { conflict: 0, changed: 0, unchanged: 0 }
    for (let seed = 1; seed <= 400; seed++) {
      const { stored, change, limits } = generatedCase(seed)
      const plan = planned(stored, change, limits)
      const { applied, metadata } = await merged(stored, change, limits)
      const context = `seed ${String(seed)}: ${JSON.stringify({ stored, change, limits })}`
      const expected = plan === 'conflict' || !plan.changed ? stored : plan.merged
      expect(applied, context).toBe(plan !== 'conflict' && plan.changed)
      expect(JSON.stringify(metadata), context).toBe(JSON.stringify(expected))
      outcomes[plan === 'conflict' ? 'conflict' : plan.changed ? 'changed' : 'unchanged']++
    }
    // Each outcome is reached often enough to mean something.
    for (const count of Object.values(outcomes)) expect(count, JSON.stringify(outcomes)).toBeGreaterThanOrEqual(20)
  })

  it('treats an object sent with its keys in another order as unchanged, and one with a key more as changed', async () => {
    const limits = { profileMaxFields: 10, profileMaxBytes: 16_000 }
    const stored = { address: { city: 'Paris', zip: '75001' }, tags: [{ a: 1, b: 2 }] }
    expect((await merged(stored, { set: { address: { zip: '75001', city: 'Paris' }, tags: [{ b: 2, a: 1 }] }, setOnce: {}, unset: [] }, limits)).applied).toBe(false)
    expect((await merged(stored, { set: { address: { zip: '75001', city: 'Paris', country: 'FR' } }, setOnce: {}, unset: [] }, limits)).applied).toBe(true)
  })

  it('applies nothing for a visitor the profile does not list, or a profile of another user', async () => {
    const limits = { profileMaxFields: 10, profileMaxBytes: 16_000 }
    const change = { set: { plan: 'pro' }, setOnce: {}, unset: [] }
    expect((await merged({}, change, limits, { visitorIds: ['another'] })).applied).toBe(false)
    expect((await merged({}, change, limits, { userId: 'another' })).applied).toBe(false)
    expect((await merged({}, change, limits)).applied).toBe(true)
  })
})
