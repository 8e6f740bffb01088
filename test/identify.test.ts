import { afterAll, describe, expect, it } from 'vitest'
import { BSON, ObjectId } from 'mongodb'
import type { App } from '../src/app.js'
import type { Profile } from '../src/storage/repositories/profiles.js'
import { buildTestApp, createTestToken, createTestWebsite, identify, visitorId, type TestWebsite } from './helper.js'

/*
 * Integration tests of POST /api/v1/identify against the database, checked
 * against docs/api.md#identify: the fields and metadata rules, the merge, the
 * actions, the visitor links and the responses.
 */

const app = await buildTestApp()
/** The limits made small, to test that each one is configurable without huge requests. */
const small = await buildTestApp({
  METADATA_MAX_FIELDS: 3,
  METADATA_MAX_BYTES: 200,
  METADATA_MAX_DEPTH: 2,
  PROFILE_MAX_FIELDS: 5
})
afterAll(async () => {
  await app.close()
  await small.close()
})

type Reply = Awaited<ReturnType<typeof identify>>
type Action = 'created' | 'updated' | 'unchanged' | 'skipped'

const messages: Record<Action, string> = {
  created: 'User profile created successfully',
  updated: 'User profile updated successfully',
  unchanged: 'User profile unchanged',
  skipped: 'Identify skipped: the website uses cookieless tracking'
}

const PLACEHOLDERS = ['', '   ', 'undefined', 'null', 'undefined undefined', 'null undefined']

let userCounter = 0
const newUserId = (): string => `user_${String(++userCounter)}_${visitorId().slice(0, 8)}`

async function call (target: App, site: TestWebsite, userId: string, vid: string, metadata: Record<string, unknown> = {}): Promise<Reply> {
  return await identify(target, { auth: site.key, body: { user_id: userId, datafast_visitor_id: vid, ...metadata } })
}

/** Sends a JSON text as it is, for keys such as __proto__ that a JS object literal cannot carry. */
async function callRaw (target: App, site: TestWebsite, text: string): Promise<Reply> {
  return await identify(target, { auth: site.key, body: text, headers: { 'content-type': 'application/json' } })
}

/** A JSON body text with user_id, datafast_visitor_id and the given raw JSON members. */
function rawBody (userId: string, vid: string, members: string): string {
  return `{"user_id":${JSON.stringify(userId)},"datafast_visitor_id":${JSON.stringify(vid)}${members === '' ? '' : `,${members}`}}`
}

function expectSuccess (reply: Reply, action: Action): string {
  expect(reply.statusCode, reply.body).toBe(200)
  const body = reply.json()
  expect(body).toEqual({
    status: 'success',
    data: {
      message: messages[action],
      profileId: action === 'skipped' ? null : expect.stringMatching(/^[0-9a-f]{24}$/i),
      action
    }
  })
  return body.data.profileId as string
}

function expectError (reply: Reply, code: number, ...patterns: RegExp[]): string {
  expect(reply.statusCode, reply.body).toBe(code)
  expect(reply.headers['content-type']).toMatch(/^application\/json/)
  const body = reply.json()
  expect(body).toEqual({ status: 'error', error: { code, message: expect.any(String) } })
  const message = body.error.message as string
  for (const pattern of patterns) expect(message).toMatch(pattern)
  return message
}

async function profileOf (target: App, site: TestWebsite, userId: string): Promise<Profile> {
  const profile = await target.repositories.profiles.findProfile(site.websiteId, userId)
  expect(profile).not.toBeNull()
  return profile!
}

/** Every document of every collection as JSON text: equal snapshots mean nothing was written. */
async function snapshot (target: App): Promise<Record<string, string[]>> {
  const db = target.mongo.db
  const collections = await db.listCollections({}, { nameOnly: true }).toArray()
  const names = collections.map((collection) => collection.name).sort()
  const result: Record<string, string[]> = {}
  for (const name of names) {
    const documents = await db.collection(name).find({}).toArray()
    result[name] = documents.map((document) => JSON.stringify(document)).sort()
  }
  return result
}

async function countProfiles (target: App): Promise<number> {
  return await target.mongo.db.collection('profiles').countDocuments({})
}

/** The largest document of one website, in any collection, in BSON bytes. */
async function largestDocumentOf (target: App, websiteId: string): Promise<number> {
  const db = target.mongo.db
  let largest = 0
  for (const { name } of await db.listCollections({}, { nameOnly: true }).toArray()) {
    for (const document of await db.collection(name).find({ websiteId: new ObjectId(websiteId) }).toArray()) {
      largest = Math.max(largest, BSON.calculateObjectSize(document))
    }
  }
  return largest
}

const sorted = (values: string[]): string[] => [...values].sort()

describe('success envelope', () => {
  it('answers created with the contract envelope and a 24-hex profileId', async () => {
    const site = await createTestWebsite(app)
    const reply = await call(app, site, newUserId(), visitorId(), { name: 'Ada' })
    expectSuccess(reply, 'created')
    expect(reply.headers['content-type']).toMatch(/^application\/json/)
    expect(Object.keys(reply.json().data)).toEqual(['message', 'profileId', 'action'])
  })

  it('returns the same profileId on every later call, with the updated and unchanged messages', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vid = visitorId()
    const first = expectSuccess(await call(app, site, userId, vid, { plan: 'free' }), 'created')
    const second = expectSuccess(await call(app, site, userId, vid, { plan: 'pro' }), 'updated')
    const third = expectSuccess(await call(app, site, userId, vid, { plan: 'pro' }), 'unchanged')
    const fourth = expectSuccess(await call(app, site, userId, visitorId()), 'updated')
    expect(new Set([first, second, third, fourth])).toEqual(new Set([first]))
    expect((await profileOf(app, site, userId)).id).toBe(first)
  })

  it('stores the visitor UUID lowercase: the lowercase form of an uppercase one is already linked', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const lower = visitorId()
    const upper = lower.toUpperCase()
    expect(upper).not.toBe(lower)
    expectSuccess(await call(app, site, userId, upper, { name: 'Ada' }), 'created')
    expect((await profileOf(app, site, userId)).visitorIds).toEqual([lower])
    expectSuccess(await call(app, site, userId, lower, { name: 'Ada' }), 'unchanged')
    const mixed = lower.replace(/[a-f]/, (letter) => letter.toUpperCase())
    expectSuccess(await call(app, site, userId, mixed), 'unchanged')
    expect((await profileOf(app, site, userId)).visitorIds).toEqual([lower])
  })
})

describe('request fields user_id and datafast_visitor_id', () => {
  it.each([
    ['missing', undefined],
    ['a number', 123],
    ['a boolean', true],
    ['null', null],
    ['an object', { id: 'u1' }],
    ['an array', ['u1']],
    ['empty', ''],
    ['only white space', ' \t\n'],
    ['only Unicode white space', '\u00a0\u2003'],
    ['256 characters long', 'u'.repeat(256)]
  ])('rejects a user_id that is %s with a 400 naming user_id, storing nothing', async (_case, userId) => {
    const site = await createTestWebsite(app)
    const before = await snapshot(app)
    const body: Record<string, unknown> = { datafast_visitor_id: visitorId(), name: 'Ada' }
    if (userId !== undefined) body.user_id = userId
    expectError(await identify(app, { auth: site.key, body }), 400, /user_id/)
    expect(await snapshot(app)).toEqual(before)
  })

  it('accepts a user_id of 255 characters and keeps it exactly', async () => {
    const site = await createTestWebsite(app)
    const userId = ` ${'u'.repeat(253)} `
    expectSuccess(await call(app, site, userId, visitorId()), 'created')
    expect((await profileOf(app, site, userId)).userId).toBe(userId)
  })

  it.each([
    ['missing', undefined],
    ['a number', 42],
    ['null', null],
    ['not a UUID', 'visitor-1'],
    ['a UUID without dashes', visitorId().replaceAll('-', '')],
    ['a UUID in braces', `{${visitorId()}}`],
    ['a UUID with a non-hex digit', `g${visitorId().slice(1)}`],
    ['a UUID with white space around it', ` ${visitorId()} `]
  ])('rejects a datafast_visitor_id that is %s with a 400 naming it, storing nothing', async (_case, vid) => {
    const site = await createTestWebsite(app)
    const before = await snapshot(app)
    const body: Record<string, unknown> = { user_id: newUserId() }
    if (vid !== undefined) body.datafast_visitor_id = vid
    expectError(await identify(app, { auth: site.key, body }), 400, /datafast_visitor_id/)
    expect(await snapshot(app)).toEqual(before)
  })

  it.each([
    ['an array', '[]'],
    ['a string', '"hello"'],
    ['null', 'null'],
    ['a number', '1']
  ])('rejects a body that is %s with a 400', async (_case, text) => {
    const site = await createTestWebsite(app)
    expectError(await callRaw(app, site, text), 400)
  })
})

describe('actions: created, updated, unchanged', () => {
  it('is created for a new profile, updated for a new value, unchanged when linked and equal', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vid = visitorId()
    expectSuccess(await call(app, site, userId, vid, { name: 'Ada', plan: 'free' }), 'created')
    expectSuccess(await call(app, site, userId, vid, { name: 'Ada', plan: 'free' }), 'unchanged')
    expectSuccess(await call(app, site, userId, vid, { plan: 'pro' }), 'updated')
    expectSuccess(await call(app, site, userId, vid, { seats: 3 }), 'updated')
    expectSuccess(await call(app, site, userId, vid, { name: 'Ada' }), 'unchanged')
    expectSuccess(await call(app, site, userId, vid), 'unchanged')
    expect((await profileOf(app, site, userId)).metadata).toEqual({ name: 'Ada', plan: 'pro', seats: 3 })
  })

  it('changes nothing stored on unchanged, not even updatedAt', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vid = visitorId()
    expectSuccess(await call(app, site, userId, vid, { name: 'Ada', address: { city: 'London' } }), 'created')
    const profile = await profileOf(app, site, userId)
    const before = await snapshot(app)
    await new Promise((resolve) => setTimeout(resolve, 15))
    expectSuccess(await call(app, site, userId, vid, { name: 'Ada', address: { city: 'London' } }), 'unchanged')
    const after = await profileOf(app, site, userId)
    expect(after.updatedAt.getTime()).toBe(profile.updatedAt.getTime())
    expect(after).toEqual(profile)
    expect(await snapshot(app)).toEqual(before)
  })

  it('moves updatedAt forward on updated', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vid = visitorId()
    expectSuccess(await call(app, site, userId, vid, { name: 'Ada' }), 'created')
    const before = await profileOf(app, site, userId)
    await new Promise((resolve) => setTimeout(resolve, 15))
    expectSuccess(await call(app, site, userId, vid, { name: 'Ada L' }), 'updated')
    const after = await profileOf(app, site, userId)
    expect(after.updatedAt.getTime()).toBeGreaterThan(before.updatedAt.getTime())
    expect(after.createdAt.getTime()).toBe(before.createdAt.getTime())
  })

  it('is updated for a new visitor of a known user even when every field is equal', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const first = visitorId()
    const second = visitorId()
    expectSuccess(await call(app, site, userId, first, { name: 'Ada' }), 'created')
    expectSuccess(await call(app, site, userId, second, { name: 'Ada' }), 'updated')
    expectSuccess(await call(app, site, userId, second, { name: 'Ada' }), 'unchanged')
    expect(sorted((await profileOf(app, site, userId)).visitorIds)).toEqual(sorted([first, second]))
  })

  it('compares nested objects as values: the same object with its keys in another order is unchanged', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vid = visitorId()
    expectSuccess(await call(app, site, userId, vid, {
      address: { city: 'London', zip: 'N1', geo: { lat: 51.5, lng: -0.1 } },
      tags: ['a', 'b'],
      empty: {},
      none: [],
      cleared: null
    }), 'created')
    expectSuccess(await callRaw(app, site, rawBody(userId, vid,
      '"address":{"geo":{"lng":-0.1,"lat":51.5},"zip":"N1","city":"London"},"tags":["a","b"],"empty":{},"none":[],"cleared":null'
    )), 'unchanged')
  })

  it('is updated when an array holds the same items in another order', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vid = visitorId()
    expectSuccess(await call(app, site, userId, vid, { tags: ['a', 'b'] }), 'created')
    expectSuccess(await call(app, site, userId, vid, { tags: ['b', 'a'] }), 'updated')
    expect((await profileOf(app, site, userId)).metadata.tags).toEqual(['b', 'a'])
  })

  it('is updated when a value keeps its text but changes its JSON type', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vid = visitorId()
    expectSuccess(await call(app, site, userId, vid, { seats: 3, active: true }), 'created')
    expectSuccess(await call(app, site, userId, vid, { seats: '3' }), 'updated')
    expectSuccess(await call(app, site, userId, vid, { active: 'true' }), 'updated')
    expectSuccess(await call(app, site, userId, vid, { seats: '3', active: 'true' }), 'unchanged')
    expect((await profileOf(app, site, userId)).metadata).toEqual({ seats: '3', active: 'true' })
  })

  it('is updated when a nested object gains or loses a key', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vid = visitorId()
    expectSuccess(await call(app, site, userId, vid, { address: { city: 'London' } }), 'created')
    expectSuccess(await call(app, site, userId, vid, { address: { city: 'London', zip: null } }), 'updated')
    expectSuccess(await call(app, site, userId, vid, { address: { city: 'London' } }), 'updated')
  })

  it('is updated when a visitor that moved to another user comes back', async () => {
    const site = await createTestWebsite(app)
    const first = newUserId()
    const second = newUserId()
    const vid = visitorId()
    expectSuccess(await call(app, site, first, vid, { name: 'Ada' }), 'created')
    expectSuccess(await call(app, site, second, vid, { name: 'Bob' }), 'created')
    expectSuccess(await call(app, site, first, vid, { name: 'Ada' }), 'updated')
    expect((await profileOf(app, site, first)).visitorIds).toEqual([vid])
    expect((await profileOf(app, site, second)).visitorIds).toEqual([])
  })
})

describe('shallow merge, null and placeholders', () => {
  it('keeps the fields not sent and replaces a nested object as a whole', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vid = visitorId()
    expectSuccess(await call(app, site, userId, vid, {
      name: 'Ada',
      plan: 'free',
      address: { city: 'London', zip: 'N1' },
      tags: ['a', 'b', 'c']
    }), 'created')
    expectSuccess(await call(app, site, userId, vid, { plan: 'pro', address: { city: 'Paris' }, tags: ['d'] }), 'updated')
    expect((await profileOf(app, site, userId)).metadata).toEqual({
      name: 'Ada',
      plan: 'pro',
      address: { city: 'Paris' },
      tags: ['d']
    })
  })

  it('stores null as null: it clears a stored value and is unchanged when sent again', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vid = visitorId()
    expectSuccess(await call(app, site, userId, vid, { name: 'Ada', company: null }), 'created')
    let metadata = (await profileOf(app, site, userId)).metadata
    expect(metadata).toHaveProperty('company')
    expect(metadata.company).toBeNull()
    expectSuccess(await call(app, site, userId, vid, { name: null }), 'updated')
    metadata = (await profileOf(app, site, userId)).metadata
    expect(metadata).toEqual({ name: null, company: null })
    expectSuccess(await call(app, site, userId, vid, { name: null, company: null }), 'unchanged')
    expectSuccess(await call(app, site, userId, vid, { name: 'Ada again' }), 'updated')
    expect((await profileOf(app, site, userId)).metadata).toEqual({ name: 'Ada again', company: null })
  })

  it.each(PLACEHOLDERS)('ignores the placeholder %j: not stored, overwrites nothing', async (placeholder) => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vid = visitorId()
    expectSuccess(await call(app, site, userId, vid, { name: 'Ada', fresh: placeholder }), 'created')
    expect((await profileOf(app, site, userId)).metadata).toEqual({ name: 'Ada' })
    const before = await snapshot(app)
    expectSuccess(await call(app, site, userId, vid, { name: placeholder, other: placeholder }), 'unchanged')
    expect(await snapshot(app)).toEqual(before)
    expect((await profileOf(app, site, userId)).metadata).toEqual({ name: 'Ada' })
    // A new visitor makes the call an update, and still the placeholder overwrites nothing.
    expectSuccess(await call(app, site, userId, visitorId(), { name: placeholder, plan: 'pro' }), 'updated')
    expect((await profileOf(app, site, userId)).metadata).toEqual({ name: 'Ada', plan: 'pro' })
  })

  it('changes nothing on a call whose metadata is all placeholders, for a linked visitor', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vid = visitorId()
    expectSuccess(await call(app, site, userId, vid, { name: 'Ada', email: 'ada@example.com' }), 'created')
    const profile = await profileOf(app, site, userId)
    const before = await snapshot(app)
    const all = Object.fromEntries(PLACEHOLDERS.map((placeholder, index) => [`field${String(index)}`, placeholder]))
    expectSuccess(await call(app, site, userId, vid, { ...all, name: '', email: 'null' }), 'unchanged')
    expect(await snapshot(app)).toEqual(before)
    expect(await profileOf(app, site, userId)).toEqual(profile)
  })

  it('creates a profile without metadata when a new user sends only placeholders', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vid = visitorId()
    expectSuccess(await call(app, site, userId, vid, { name: '', image: 'undefined' }), 'created')
    const profile = await profileOf(app, site, userId)
    expect(profile.metadata).toEqual({})
    expect(profile.visitorIds).toEqual([vid])
  })

  it.each(['nullable', 'undefined-ish', 'undefinednull', 'null,undefined', 'null.', 'Ada null', 'none', '0', 'false'])(
    'stores %j: it is not a placeholder', async (value) => {
      const site = await createTestWebsite(app)
      const userId = newUserId()
      const vid = visitorId()
      expectSuccess(await call(app, site, userId, vid, { name: 'Ada' }), 'created')
      expectSuccess(await call(app, site, userId, vid, { name: value }), 'updated')
      expect((await profileOf(app, site, userId)).metadata).toEqual({ name: value })
    })

  it('stores non-string falsy values: 0, false, [] and {}', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vid = visitorId()
    expectSuccess(await call(app, site, userId, vid, { zero: 0, no: false, list: [], object: {} }), 'created')
    expect((await profileOf(app, site, userId)).metadata).toEqual({ zero: 0, no: false, list: [], object: {} })
  })

  it('keeps a stored name when the DataFast SDK payload sends name and image as empty strings', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vid = visitorId()
    expectSuccess(await call(app, site, userId, vid, { name: 'Ada Lovelace', image: 'https://example.com/ada.png', plan: 'pro' }), 'created')
    // What DataFast's browser SDK sends when the app sets neither name nor image.
    expectSuccess(await identify(app, {
      auth: site.key,
      body: { user_id: userId, datafast_visitor_id: vid, name: '', image: '' }
    }), 'unchanged')
    expectSuccess(await call(app, site, userId, visitorId(), { name: '', image: '', plan: 'team' }), 'updated')
    expect((await profileOf(app, site, userId)).metadata).toEqual({
      name: 'Ada Lovelace',
      image: 'https://example.com/ada.png',
      plan: 'team'
    })
  })

  it('does not store name and image when a new profile comes from the SDK payload with empty strings', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    expectSuccess(await call(app, site, userId, visitorId(), { name: '', image: '', plan: 'pro' }), 'created')
    expect((await profileOf(app, site, userId)).metadata).toEqual({ plan: 'pro' })
  })
})

/** Where a bad key sits, as raw JSON members holding `key` (a JSON string). */
const positions: Array<[string, (key: string) => string, RegExp]> = [
  ['a top-level field', (key) => `${key}:1`, /metadata field|key/],
  ['a nested object', (key) => `"profile":{"ok":1,${key}:1}`, /profile/],
  ['an object inside an array', (key) => `"list":[{"ok":1},{${key}:1}]`, /list/],
  ['an object four levels deep', (key) => `"outer":{"b":{"c":{${key}:1}}}`, /outer/],
  ['an object in an array in an object', (key) => `"outer":{"list":[{"ok":1},{${key}:"x"}]}`, /outer/]
]

const badKeys: Array<[string, string, RegExp]> = [
  ['empty', '', /1 to 128/],
  ['129 characters long', 'k'.repeat(129), /128/],
  ['starting with $', '$set', /\$/],
  ['just $', '$', /\$/],
  ['holding a dot', 'a.b', /"\."/],
  ['ending with a dot', 'trailing.', /"\."/],
  ['holding NUL', 'a\u0000b', /NUL/],
  ['__proto__', '__proto__', /__proto__/],
  ['constructor', 'constructor', /constructor/],
  ['prototype', 'prototype', /prototype/]
]

describe('metadata key rules at every depth', () => {
  for (const [where, member, fieldPattern] of positions) {
    it.each(badKeys)(`rejects a key that is %s in ${where} with a 400, writing nothing`, async (_case, key, rule) => {
      const site = await createTestWebsite(app)
      const userId = newUserId()
      const vid = visitorId()
      expectSuccess(await call(app, site, userId, vid, { name: 'Ada' }), 'created')
      const before = await snapshot(app)
      // A valid change in the same call must not be written either.
      const reply = await callRaw(app, site, rawBody(userId, visitorId(), `"name":"Eve",${member(JSON.stringify(key))}`))
      expectError(reply, 400, rule, fieldPattern)
      expect(await snapshot(app)).toEqual(before)
      expect((await profileOf(app, site, userId)).metadata).toEqual({ name: 'Ada' })
    })
  }

  it('rejects a bad key on a new user without creating the profile', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const before = await snapshot(app)
    expectError(await callRaw(app, site, rawBody(userId, visitorId(), '"name":"Ada","__proto__":{"admin":true}')), 400, /__proto__/)
    expect(await snapshot(app)).toEqual(before)
    expect(await app.repositories.profiles.findProfile(site.websiteId, userId)).toBeNull()
  })

  it('accepts keys of 1 and 128 characters, and $ or reserved words that are only part of a key', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const metadata = {
      k: 1,
      ['k'.repeat(128)]: 2,
      ['é'.repeat(128)]: 3,
      price$: 4,
      my__proto__: 5,
      constructors: 6,
      Prototype: 7,
      nested: { ['n'.repeat(128)]: { a$b: [{ x: 1 }] } }
    }
    expectSuccess(await call(app, site, userId, visitorId(), metadata), 'created')
    expect((await profileOf(app, site, userId)).metadata).toEqual(metadata)
  })

  it('counts a key\'s length in characters: 128 characters outside the BMP are accepted', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const key = '😀'.repeat(128)
    expect(Array.from(key)).toHaveLength(128)
    expectSuccess(await call(app, site, userId, visitorId(), { [key]: 1 }), 'created')
    expect((await profileOf(app, site, userId)).metadata).toEqual({ [key]: 1 })
    expectError(await call(app, site, newUserId(), visitorId(), { ['😀'.repeat(129)]: 1 }), 400, /128/)
  })
})

describe('NUL and unpaired surrogates are rejected everywhere (documented choice)', () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['a top-level value with NUL', { name: 'Ada\u0000Lovelace' }],
    ['a nested value with NUL', { address: { city: 'Lon\u0000don' } }],
    ['a value inside an array with NUL', { tags: ['ok', '\u0000'] }],
    ['a top-level value with an unpaired high surrogate', { name: 'Ada\ud800' }],
    ['a top-level value with an unpaired low surrogate', { name: '\udc00Ada' }],
    ['a value with surrogates in the wrong order', { name: '\udc00\ud800' }],
    ['a nested value with an unpaired surrogate', { address: { city: ['\ud83d'] } }],
    ['a top-level key with an unpaired surrogate', { ['name\ud800']: 'Ada' }],
    ['a nested key with NUL', { address: { ['ci\u0000ty']: 'London' } }],
    ['a nested key with an unpaired surrogate', { list: [{ ['\udfff']: 1 }] }]
  ]

  it.each(cases)('rejects %s with a 400, writing nothing', async (_case, metadata) => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vid = visitorId()
    expectSuccess(await call(app, site, userId, vid, { name: 'Ada' }), 'created')
    const before = await snapshot(app)
    expectError(await call(app, site, userId, vid, metadata), 400, /NUL|surrogate/)
    expect(await snapshot(app)).toEqual(before)
  })

  it.each([
    ['NUL', 'user\u0000one'],
    ['an unpaired high surrogate', 'user\ud800'],
    ['an unpaired low surrogate', '\udc00user']
  ])('rejects a user_id with %s with a 400 naming user_id, writing nothing', async (_case, userId) => {
    const site = await createTestWebsite(app)
    const before = await snapshot(app)
    expectError(await call(app, site, userId, visitorId(), { name: 'Ada' }), 400, /user_id/)
    expect(await snapshot(app)).toEqual(before)
  })

  it('accepts properly paired surrogates (emoji) in values, keys and user_id', async () => {
    const site = await createTestWebsite(app)
    const userId = 'user 😀'
    const vid = visitorId()
    expectSuccess(await call(app, site, userId, vid, { name: 'Ada 👩‍💻', ['🔑']: { ['🌍']: ['🎉'] } }), 'created')
    expect((await profileOf(app, site, userId)).metadata).toEqual({ name: 'Ada 👩‍💻', ['🔑']: { ['🌍']: ['🎉'] } })
    expectSuccess(await call(app, site, userId, vid, { name: 'Ada 👩‍💻' }), 'unchanged')
  })
})

describe('metadata depth', () => {
  // docs/api.md#identify-metadata-values: objects and arrays nest at most 5 deep
  // inside one field's value, and {"a":{"b":{"c":{"d":{"e":1}}}}} is 5 deep.
  const fiveDeep = { a: { b: { c: { d: { e: 1 } } } } }

  it('accepts the contract\'s example {"a":{"b":{"c":{"d":{"e":1}}}}} as a field\'s value, and stores it whole', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vid = visitorId()
    expectSuccess(await call(app, site, userId, vid, { f: fiveDeep }), 'created')
    expect((await profileOf(app, site, userId)).metadata).toEqual({ f: fiveDeep })
    expectSuccess(await call(app, site, userId, vid, { f: fiveDeep }), 'unchanged')
  })

  it.each([
    ['an object one level deeper', { f: { a: { b: { c: { d: { e: { g: 1 } } } } } } }],
    ['an empty object one level deeper', { f: { a: { b: { c: { d: { e: {} } } } } } }],
    ['arrays and objects one level deeper', { a: [{ b: [{ c: [{ d: [1] }] }] }] }],
    ['an empty array one level deeper', { f: { a: { b: { c: { d: { e: [] } } } } } }],
    ['an empty object one level deeper inside arrays', { a: [{ b: [{ c: [{}] }] }] }],
    ['a deep value in a later field', { ok: 1, z: { a: { b: { c: { d: { e: { f: 'deep' } } } } } } }]
  ])('rejects %s with a 400 naming the field and the limit, writing nothing', async (_case, metadata) => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const before = await snapshot(app)
    const field = Object.keys(metadata).at(-1)!
    expectError(await call(app, site, userId, visitorId(), metadata), 400, /\b5\b/, /deep|depth/i, new RegExp(`\\b${field}\\b`))
    expect(await snapshot(app)).toEqual(before)
  })

  it.each([
    ['arrays and objects alternating to the limit', { a: [{ b: [{ c: [1] }] }] }],
    ['arrays and objects ending in an empty one at the limit', { a: [{ b: [{ c: [] }] }] }],
    ['many fields each at the limit', { a: fiveDeep, x: [{ y: [{ z: 'y' }] }], z: { y: [{ x: [null] }] } }]
  ])('accepts %s', async (_case, metadata) => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    expectSuccess(await call(app, site, userId, visitorId(), metadata), 'created')
    expect((await profileOf(app, site, userId)).metadata).toEqual(metadata)
  })

  it.each([
    ['a matrix', { matrix: [[1, 2], [3]] }],
    ['an array deep inside an array', { mixed: [1, { four: [[4]] }] }]
  ])('refuses an array directly inside an array (%s) with a 400, writing nothing (docs/api.md#arrays-inside-arrays)', async (_case, metadata) => {
    const site = await createTestWebsite(app)
    const before = await snapshot(app)
    expectError(await call(app, site, newUserId(), visitorId(), metadata), 400, /array inside an array/)
    expect(await snapshot(app)).toEqual(before)
  })

  it('accepts and stores any other JSON value within the depth limit', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vid = visitorId()
    const metadata = { list: [1, 'two', null, true, { four: [4] }], object: { n: 1.5, s: 's', b: false, z: null, e: {}, a: [] } }
    expectSuccess(await call(app, site, userId, vid, metadata), 'created')
    expect((await profileOf(app, site, userId)).metadata).toEqual(metadata)
    expectSuccess(await call(app, site, userId, vid, metadata), 'unchanged')
  })

  it('is configurable: METADATA_MAX_DEPTH=2 accepts {"a":{"b":1}} as a value and rejects {"a":{"b":{}}}', async () => {
    const site = await createTestWebsite(small)
    expectSuccess(await call(small, site, newUserId(), visitorId(), { f: { a: { b: 1 } }, l: [{ a: 1 }] }), 'created')
    expectError(await call(small, site, newUserId(), visitorId(), { f: { a: { b: {} } } }), 400, /\b2\b/, /\bf\b/)
    expectError(await call(small, site, newUserId(), visitorId(), { l: [{ a: [] }] }), 400, /\b2\b/, /\bl\b/)
  })
})

describe('metadata fields per request', () => {
  const fields = (count: number, prefix = 'f'): Record<string, number> =>
    Object.fromEntries(Array.from({ length: count }, (_, index) => [`${prefix}${String(index)}`, index]))

  it('accepts 100 metadata fields in one request', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    expectSuccess(await call(app, site, userId, visitorId(), fields(100)), 'created')
    expect(Object.keys((await profileOf(app, site, userId)).metadata)).toHaveLength(100)
  })

  it('rejects 101 metadata fields with a 400 naming the limit, writing nothing', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const before = await snapshot(app)
    expectError(await call(app, site, userId, visitorId(), fields(101)), 400, /\b100\b/, /field/i)
    expect(await snapshot(app)).toEqual(before)
  })

  it('is configurable: METADATA_MAX_FIELDS=3 accepts 3 fields and rejects 4', async () => {
    const site = await createTestWebsite(small)
    expectSuccess(await call(small, site, newUserId(), visitorId(), fields(3)), 'created')
    expectError(await call(small, site, newUserId(), visitorId(), fields(4)), 400, /\b3\b/, /field/i)
  })
})

describe('metadata bytes per request', () => {
  /** One field whose metadata object {"blob":"…"} is exactly `bytes` long as UTF-8 JSON. */
  const blob = (bytes: number, filler = 'x'): Record<string, string> => {
    const overhead = Buffer.byteLength(JSON.stringify({ blob: '' }))
    const unit = Buffer.byteLength(filler)
    const value = filler.repeat(Math.floor((bytes - overhead) / unit)) + 'x'.repeat((bytes - overhead) % unit)
    const metadata = { blob: value }
    expect(Buffer.byteLength(JSON.stringify(metadata))).toBe(bytes)
    return metadata
  }

  it('accepts exactly 32 KiB of metadata', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const metadata = blob(32 * 1024)
    expectSuccess(await call(app, site, userId, visitorId(), metadata), 'created')
    expect((await profileOf(app, site, userId)).metadata).toEqual(metadata)
  })

  it('rejects 32 KiB + 1 byte of metadata with a 400 naming the limit, writing nothing', async () => {
    const site = await createTestWebsite(app)
    const before = await snapshot(app)
    expectError(await call(app, site, newUserId(), visitorId(), blob(32 * 1024 + 1)), 400, /32768|32 KiB/)
    expect(await snapshot(app)).toEqual(before)
  })

  it('counts UTF-8 bytes, not characters', async () => {
    const site = await createTestWebsite(app)
    const metadata = blob(32 * 1024 + 1, 'é')
    expect(JSON.stringify(metadata).length).toBeLessThan(32 * 1024)
    expectError(await call(app, site, newUserId(), visitorId(), metadata), 400, /32768|32 KiB/)
  })

  it('is configurable: METADATA_MAX_BYTES=200', async () => {
    const site = await createTestWebsite(small)
    expectSuccess(await call(small, site, newUserId(), visitorId(), blob(200)), 'created')
    expectError(await call(small, site, newUserId(), visitorId(), blob(201)), 400, /\b200\b/)
  })
})

describe('metadata fields per profile after merging', () => {
  const fields = (from: number, count: number): Record<string, number> =>
    Object.fromEntries(Array.from({ length: count }, (_, index) => [`f${String(from + index)}`, from + index]))

  it('holds 500 fields over several calls and rejects the 501st with a 409 naming the limit (the stored profile cannot take it)', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vid = visitorId()
    expectSuccess(await call(app, site, userId, vid, fields(0, 100)), 'created')
    for (let from = 100; from < 500; from += 100) {
      expectSuccess(await call(app, site, userId, vid, fields(from, 100)), 'updated')
    }
    expect(Object.keys((await profileOf(app, site, userId)).metadata)).toHaveLength(500)
    const before = await snapshot(app)
    expectError(await call(app, site, userId, vid, { f0: 'changed', f499: 'changed', extra: 1 }), 409, /\b500\b/)
    expect(await snapshot(app)).toEqual(before)
    // Replacing stored fields adds none: still allowed at the limit.
    expectSuccess(await call(app, site, userId, vid, { f0: 'replaced', f499: null }), 'updated')
    const metadata = (await profileOf(app, site, userId)).metadata
    expect(Object.keys(metadata)).toHaveLength(500)
    expect(metadata.f0).toBe('replaced')
    expect(metadata.f499).toBeNull()
  })

  it('is configurable: PROFILE_MAX_FIELDS=5 counts stored nulls, not placeholders', async () => {
    const site = await createTestWebsite(small)
    const userId = newUserId()
    const vid = visitorId()
    expectSuccess(await call(small, site, userId, vid, { a: 1, b: null, c: '' }), 'created')
    expectSuccess(await call(small, site, userId, vid, { c: 3, d: 4, e: 'undefined' }), 'updated')
    expectSuccess(await call(small, site, userId, vid, { e: 5 }), 'updated')
    expect(Object.keys((await profileOf(small, site, userId)).metadata).sort()).toEqual(['a', 'b', 'c', 'd', 'e'])
    const before = await snapshot(small)
    expectError(await call(small, site, userId, vid, { f: 6 }), 409, /\b5\b/)
    expectError(await call(small, site, userId, visitorId(), { a: 2, f: null }), 409, /\b5\b/)
    expect(await snapshot(small)).toEqual(before)
    expectSuccess(await call(small, site, userId, vid, { a: 2, f: '' }), 'updated')
  })

  it('rejects a first call that exceeds the profile limit without creating the profile', async () => {
    const configured = await buildTestApp({ METADATA_MAX_FIELDS: 10, PROFILE_MAX_FIELDS: 4 })
    try {
      const site = await createTestWebsite(configured)
      const userId = newUserId()
      const before = await snapshot(configured)
      expectError(await call(configured, site, userId, visitorId(), fields(0, 5)), 409, /\b4\b/)
      expect(await snapshot(configured)).toEqual(before)
      expect(await configured.repositories.profiles.findProfile(site.websiteId, userId)).toBeNull()
      expectSuccess(await call(configured, site, userId, visitorId(), fields(0, 4)), 'created')
    } finally {
      await configured.close()
    }
  })
})

describe('visitor links', () => {
  it('collects every visitor of one user on one profile', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vids = [visitorId(), visitorId(), visitorId()]
    expectSuccess(await call(app, site, userId, vids[0]!, { name: 'Ada' }), 'created')
    expectSuccess(await call(app, site, userId, vids[1]!), 'updated')
    expectSuccess(await call(app, site, userId, vids[2]!, { name: 'Ada' }), 'updated')
    expectSuccess(await call(app, site, userId, vids[0]!), 'unchanged')
    expect(sorted((await profileOf(app, site, userId)).visitorIds)).toEqual(sorted(vids))
  })

  it('moves a visitor identified with another user_id: the old profile no longer lists it', async () => {
    const site = await createTestWebsite(app)
    const first = newUserId()
    const second = newUserId()
    const shared = visitorId()
    const own = visitorId()
    const firstId = expectSuccess(await call(app, site, first, shared, { name: 'Ada' }), 'created')
    expectSuccess(await call(app, site, first, own), 'updated')
    const secondId = expectSuccess(await call(app, site, second, shared.toUpperCase(), { name: 'Bob' }), 'created')
    expect(secondId).not.toBe(firstId)
    expect((await profileOf(app, site, first)).visitorIds).toEqual([own])
    expect((await profileOf(app, site, second)).visitorIds).toEqual([shared])
    // The first profile keeps its metadata: only the link moved.
    expect((await profileOf(app, site, first)).metadata).toEqual({ name: 'Ada' })
    expectSuccess(await call(app, site, second, shared, { name: 'Bob' }), 'unchanged')
  })

  it('does not grow any document without bound as visitors are added', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    expectSuccess(await call(app, site, userId, visitorId(), { name: 'Ada' }), 'created')
    const before = await largestDocumentOf(app, site.websiteId)
    for (let index = 0; index < 60; index++) {
      expectSuccess(await call(app, site, userId, visitorId()), 'updated')
    }
    expect((await profileOf(app, site, userId)).visitorIds).toHaveLength(61)
    // 60 more UUIDs in one document would add well over 2 KB.
    expect(await largestDocumentOf(app, site.websiteId)).toBeLessThan(before + 1000)
  })
})

describe('websites never mix', () => {
  it('keeps equal user_ids of two websites on two profiles with separate metadata', async () => {
    const one = await createTestWebsite(app)
    const two = await createTestWebsite(app, { accountId: one.accountId })
    const other = await createTestWebsite(app)
    const userId = newUserId()
    const vid = visitorId()
    const ids = [
      expectSuccess(await call(app, one, userId, vid, { name: 'Ada', plan: 'pro' }), 'created'),
      expectSuccess(await call(app, two, userId, vid, { name: 'Bob' }), 'created'),
      expectSuccess(await call(app, other, userId, vid, { seats: 2 }), 'created')
    ]
    expect(new Set(ids).size).toBe(3)
    expect((await profileOf(app, one, userId)).metadata).toEqual({ name: 'Ada', plan: 'pro' })
    expect((await profileOf(app, two, userId)).metadata).toEqual({ name: 'Bob' })
    expect((await profileOf(app, other, userId)).metadata).toEqual({ seats: 2 })
    expectSuccess(await call(app, one, userId, vid, { name: 'Ada', plan: 'pro' }), 'unchanged')
  })

  it('links one visitor on each website it is identified on', async () => {
    const one = await createTestWebsite(app)
    const two = await createTestWebsite(app)
    const vid = visitorId()
    const first = newUserId()
    const second = newUserId()
    expectSuccess(await call(app, one, first, vid), 'created')
    expectSuccess(await call(app, two, second, vid), 'created')
    expect((await profileOf(app, one, first)).visitorIds).toEqual([vid])
    expect((await profileOf(app, two, second)).visitorIds).toEqual([vid])
    expectSuccess(await call(app, one, first, vid), 'unchanged')
    expectSuccess(await call(app, two, second, vid), 'unchanged')
  })
})

describe('cookieless websites', () => {
  it('answers 200 skipped with a null profileId and stores nothing', async () => {
    const site = await createTestWebsite(app, { cookieless: true })
    const userId = newUserId()
    const vid = visitorId()
    const profiles = await countProfiles(app)
    const before = await snapshot(app)
    expectSuccess(await call(app, site, userId, vid, { name: 'Ada' }), 'skipped')
    expectSuccess(await call(app, site, userId, vid, { name: 'Ada' }), 'skipped')
    expectSuccess(await call(app, site, userId, visitorId(), { name: 'Bob', plan: null }), 'skipped')
    expect(await countProfiles(app)).toBe(profiles)
    expect(await snapshot(app)).toEqual(before)
    expect(await app.repositories.profiles.findProfile(site.websiteId, userId)).toBeNull()
  })

  it.each([
    ['a missing user_id', { datafast_visitor_id: visitorId() }],
    ['a bad visitor id', { user_id: 'u1', datafast_visitor_id: 'nope' }],
    ['a key starting with $', { user_id: 'u1', datafast_visitor_id: visitorId(), $set: 1 }],
    ['too deep a value', { user_id: 'u1', datafast_visitor_id: visitorId(), a: { b: { c: { d: { e: { f: { g: 1 } } } } } } }],
    ['101 fields', { user_id: 'u1', datafast_visitor_id: visitorId(), ...Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`f${String(i)}`, i])) }]
  ])('still rejects %s with a 400', async (_case, body) => {
    const site = await createTestWebsite(app, { cookieless: true })
    expectError(await identify(app, { auth: site.key, body }), 400)
  })

  it('still rejects a __proto__ key with a 400', async () => {
    const site = await createTestWebsite(app, { cookieless: true })
    expectError(await callRaw(app, site, rawBody('u1', visitorId(), '"__proto__":{"x":1}')), 400, /__proto__/)
  })
})

describe('account tokens', () => {
  it('writes to the profile of the website named by websiteId', async () => {
    const one = await createTestWebsite(app)
    const two = await createTestWebsite(app, { accountId: one.accountId })
    const { token } = await createTestToken(app, { accountId: one.accountId })
    const userId = newUserId()
    const vid = visitorId()
    const profileId = expectSuccess(await identify(app, {
      auth: token,
      websiteId: two.websiteId,
      body: { user_id: userId, datafast_visitor_id: vid, name: 'Ada' }
    }), 'created')
    const profile = await profileOf(app, two, userId)
    expect(profile.id).toBe(profileId)
    expect(profile.websiteId).toBe(two.websiteId)
    expect(profile.metadata).toEqual({ name: 'Ada' })
    expect(profile.visitorIds).toEqual([vid])
    expect(await app.repositories.profiles.findProfile(one.websiteId, userId)).toBeNull()
    // The website's own key reaches the same profile; an uppercase websiteId names the same website.
    expect(expectSuccess(await call(app, two, userId, vid, { name: 'Ada' }), 'unchanged')).toBe(profileId)
    expect(expectSuccess(await identify(app, {
      auth: token,
      websiteId: two.websiteId.toUpperCase(),
      body: { user_id: userId, datafast_visitor_id: vid, plan: 'pro' }
    }), 'updated')).toBe(profileId)
  })

  it('applies the metadata rules to token calls too', async () => {
    const site = await createTestWebsite(app)
    const { token } = await createTestToken(app, { accountId: site.accountId, permissions: ['*'] })
    expectError(await identify(app, {
      auth: token,
      websiteId: site.websiteId,
      body: { user_id: 'u1', datafast_visitor_id: visitorId(), 'a.b': 1 }
    }), 400, /a\.b/)
  })
})

describe('concurrency', () => {
  it('50 concurrent identifies of one new user with 50 visitors: all 200, one profile, every visitor linked', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vids = Array.from({ length: 50 }, () => visitorId())
    const profilesBefore = await countProfiles(app)
    const replies = await Promise.all(vids.map(async (vid, index) => await call(app, site, userId, vid, { name: 'Ada', [`v${String(index)}`]: index })))
    for (const reply of replies) expect(reply.statusCode, reply.body).toBe(200)
    const actions = replies.map((reply) => reply.json().data.action as string)
    expect(actions.filter((action) => action === 'created')).toHaveLength(1)
    expect(actions.filter((action) => action === 'updated')).toHaveLength(49)
    expect(new Set(replies.map((reply) => reply.json().data.profileId as string)).size).toBe(1)
    expect(await countProfiles(app)).toBe(profilesBefore + 1)
    const profile = await profileOf(app, site, userId)
    expect(sorted(profile.visitorIds)).toEqual(sorted(vids))
    expect(Object.keys(profile.metadata)).toHaveLength(51)
  })

  it('concurrent metadata updates of one profile end in the state of some serial order', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const vid = visitorId()
    expectSuccess(await call(app, site, userId, vid, { a: -1, b: -1, c: -1, keep: 'me' }), 'created')
    const count = 20
    const replies = await Promise.all(Array.from({ length: count }, async (_, index) =>
      await call(app, site, userId, vid, { a: index, b: index, c: index, [`only${String(index)}`]: true })))
    for (const reply of replies) expectSuccess(reply, 'updated')
    const { metadata } = await profileOf(app, site, userId)
    // Every request sent a, b and c equal: a serial order leaves them equal, at the last request's value.
    expect(metadata.b).toBe(metadata.a)
    expect(metadata.c).toBe(metadata.a)
    expect(metadata.a).toBeGreaterThanOrEqual(0)
    expect(metadata.a).toBeLessThan(count)
    expect(metadata.keep).toBe('me')
    for (let index = 0; index < count; index++) expect(metadata[`only${String(index)}`]).toBe(true)
    expect(Object.keys(metadata)).toHaveLength(4 + count)
  })

  it('concurrent first calls with metadata for one new user leave one profile in the state of some serial order', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const replies = await Promise.all(Array.from({ length: 20 }, async (_, index) =>
      await call(app, site, userId, visitorId(), { a: index, b: index })))
    for (const reply of replies) expect(reply.statusCode, reply.body).toBe(200)
    const { metadata, visitorIds } = await profileOf(app, site, userId)
    expect(metadata.b).toBe(metadata.a)
    expect(visitorIds).toHaveLength(20)
  })

  it('concurrent moves of one visitor leave it linked to exactly one profile', async () => {
    const site = await createTestWebsite(app)
    const vid = visitorId()
    const users = Array.from({ length: 10 }, () => newUserId())
    const replies = await Promise.all(users.map(async (userId) => await call(app, site, userId, vid)))
    for (const reply of replies) expectSuccess(reply, 'created')
    let holders = 0
    for (const userId of users) {
      const { visitorIds } = await profileOf(app, site, userId)
      if (visitorIds.includes(vid)) holders++
    }
    expect(holders).toBe(1)
  })
})

describe('responses: the error envelope', () => {
  it('answers malformed JSON with a 400', async () => {
    const site = await createTestWebsite(app)
    expectError(await callRaw(app, site, '{"user_id": "u1", '), 400, /JSON/)
  })

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/xml'])(
    'answers a body sent as %s with a 415, writing nothing', async (type) => {
      const site = await createTestWebsite(app)
      const before = await snapshot(app)
      const reply = await identify(app, {
        auth: site.key,
        body: JSON.stringify({ user_id: newUserId(), datafast_visitor_id: visitorId() }),
        headers: { 'content-type': type }
      })
      expectError(reply, 415)
      expect(await snapshot(app)).toEqual(before)
    })

  it('accepts application/json with a charset parameter', async () => {
    const site = await createTestWebsite(app)
    expectSuccess(await identify(app, {
      auth: site.key,
      body: JSON.stringify({ user_id: newUserId(), datafast_visitor_id: visitorId() }),
      headers: { 'content-type': 'application/json; charset=utf-8' }
    }), 'created')
  })

  it('answers a body over 64 KiB with a 413, writing nothing', async () => {
    const site = await createTestWebsite(app)
    const before = await snapshot(app)
    expectError(await call(app, site, newUserId(), visitorId(), { blob: 'x'.repeat(64 * 1024) }), 413)
    expect(await snapshot(app)).toEqual(before)
  })

  it('answers an unknown route with a 404 and another method with a 405, in the envelope', async () => {
    expectError(await app.inject({ method: 'POST', url: '/api/v1/nope' }), 404)
    const site = await createTestWebsite(app)
    expectError(await app.inject({ method: 'GET', url: '/api/v1/identify', headers: { authorization: `Bearer ${site.key}` } }), 405)
  })

  it('checks authentication before the body: a bad body without a key is a 401', async () => {
    expectError(await identify(app, { body: { user_id: 42 } }), 401)
    expectError(await identify(app, { auth: 'df_unknown', body: { user_id: 42 } }), 401)
  })

  it('never echoes a sent or stored value in an error message', async () => {
    const site = await createTestWebsite(app)
    expect(expectError(await call(app, site, 'secret-user-value', 'secret-visitor-value'), 400)).not.toContain('secret')
    // A profile holding a secret, then calls that break a rule on it: the messages name rules, never values.
    const userId = newUserId()
    const vid = visitorId()
    expectSuccess(await call(app, site, userId, vid, { token: 'secret-stored-value', nested: { k: 'secret-nested' } }), 'created')
    const refusals = [
      await call(app, site, userId, vid, { token: 'secret-sent-value\u0000' }),
      await call(app, site, userId, vid, { nested: { 'bad.key': 'secret-sent-nested' } }),
      await call(app, site, userId, vid, { deep: { a: { b: { c: { d: { e: { f: 'secret-deep' } } } } } } })
    ]
    for (const refusal of refusals) expect(expectError(refusal, 400)).not.toMatch(/secret/)
  })
})
