import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import type { App } from '../src/app.js'
import { buildTestApp, createTestToken, createTestWebsite, expectError, identify, snapshot, visitorId, type TestWebsite } from './helper.js'
import { walkProfiles } from './profiles-helper.js'

/*
 * POST /api/v1/identify/batch and the identify operators on the real
 * database, checked against docs/api.md#batch-identify and
 * docs/api.md#identify-operators: each batch is compared with the same items
 * sent one by one to identify on a twin website.
 */

const app = await buildTestApp({ PROFILE_MAX_FIELDS: 6, BATCH_MAX_ITEMS: 50 })
afterAll(async () => { await app.close() })

type Item = Record<string, unknown>
interface ItemResult { index: number, status: string, action?: string, profileId?: string | null, error?: { code: number, message: string } }
interface BatchData { results: ItemResult[], counts: Record<string, number> }

let userCounter = 0
const newUserId = (): string => `batch_user_${String(++userCounter)}_${randomBytes(3).toString('hex')}`

async function batch (options: { auth: string, body: unknown, websiteId?: string, headers?: Record<string, string> }) {
  return await app.inject({
    method: 'POST',
    url: '/api/v1/identify/batch',
    query: options.websiteId === undefined ? {} : { websiteId: options.websiteId },
    headers: { authorization: `Bearer ${options.auth}`, ...options.headers },
    payload: options.body as object
  })
}

async function batchData (site: TestWebsite, items: Item[]): Promise<BatchData> {
  const response = await batch({ auth: site.key, body: { items } })
  expect(response.statusCode, response.body).toBe(200)
  const body = response.json<{ status: string, data: BatchData }>()
  expect(body.status).toBe('success')
  return body.data
}

/** The items sent one by one to identify, as batch results. */
async function oneByOne (site: TestWebsite, items: Item[]): Promise<ItemResult[]> {
  const results: ItemResult[] = []
  for (const [index, item] of items.entries()) {
    const response = await identify(app, { auth: site.key, body: JSON.stringify(item), headers: { 'content-type': 'application/json' } })
    const body = response.json<{ data?: { action: string, profileId: string | null }, error?: { code: number, message: string } }>()
    results.push(response.statusCode === 200
      ? { index, status: 'success', action: body.data?.action, profileId: body.data?.profileId }
      : { index, status: 'error', error: body.error })
  }
  return results
}

/** Each profile of a website by user id: metadata and visitors, what must not depend on batch or single calls. */
async function profilesByUser (site: TestWebsite): Promise<Record<string, { metadata: unknown, visitorIds: string[] }>> {
  const profiles = await walkProfiles(app, site.key)
  return Object.fromEntries(profiles.map(({ userId, metadata, visitorIds }) => [userId, { metadata, visitorIds: [...visitorIds].sort() }]))
}

/** Without the profile ids, which differ between websites. */
const withoutIds = (results: ItemResult[]) => results.map(({ profileId, ...rest }) => ({ ...rest, hasProfile: typeof profileId === 'string' }))

/** Sends the items as one batch to a website and one by one to a twin, and expects the same results and the same profiles. */
async function expectSameAsOneByOne (items: Item[], before: Item[] = []): Promise<BatchData> {
  const batched = await createTestWebsite(app)
  const single = await createTestWebsite(app)
  if (before.length > 0) {
    await batchData(batched, before)
    await oneByOne(single, before)
  }
  const data = await batchData(batched, items)
  expect(withoutIds(data.results)).toEqual(withoutIds(await oneByOne(single, items)))
  expect(await profilesByUser(batched)).toEqual(await profilesByUser(single))
  return data
}

const site = await createTestWebsite(app)

describe('identify operators (docs/api.md#identify-operators)', () => {
  const call = async (body: Item) => await identify(app, { auth: site.key, body })
  const profile = async (userId: string) => await app.repositories.profiles.findProfile(site.websiteId, userId)

  it('$set_once stores a field only where the profile lacks it; a present one leaves the call unchanged', async () => {
    const userId = newUserId()
    const visitor = visitorId()
    expect((await call({ user_id: userId, datafast_visitor_id: visitor, $set_once: { first_source: 'ads', signup: '2024-01-01' } })).json().data.action).toBe('created')
    expect((await call({ user_id: userId, datafast_visitor_id: visitor, $set_once: { first_source: 'seo' } })).json().data.action).toBe('unchanged')
    expect((await call({ user_id: userId, datafast_visitor_id: visitor, $set_once: { first_source: 'seo', plan: 'pro' } })).json().data.action).toBe('updated')
    expect((await profile(userId))?.metadata).toEqual({ first_source: 'ads', signup: '2024-01-01', plan: 'pro' })
  })

  it('$set_once ignores placeholders and keeps a stored null', async () => {
    const userId = newUserId()
    const visitor = visitorId()
    await call({ user_id: userId, datafast_visitor_id: visitor, gone: null })
    expect((await call({ user_id: userId, datafast_visitor_id: visitor, $set_once: { gone: 'x', blank: ' undefined ' } })).json().data.action).toBe('unchanged')
    expect((await profile(userId))?.metadata).toEqual({ gone: null })
  })

  it('$unset removes present fields; an absent one changes nothing', async () => {
    const userId = newUserId()
    const visitor = visitorId()
    await call({ user_id: userId, datafast_visitor_id: visitor, a: 1, b: 2 })
    expect((await call({ user_id: userId, datafast_visitor_id: visitor, $unset: ['never'] })).json().data.action).toBe('unchanged')
    expect((await call({ user_id: userId, datafast_visitor_id: visitor, $unset: ['a', 'never'] })).json().data.action).toBe('updated')
    expect((await profile(userId))?.metadata).toEqual({ b: 2 })
  })

  it('combines plain fields, $set_once and $unset in one call', async () => {
    const userId = newUserId()
    const visitor = visitorId()
    await call({ user_id: userId, datafast_visitor_id: visitor, a: 1, b: 2, c: 3 })
    expect((await call({ user_id: userId, datafast_visitor_id: visitor, a: 10, $set_once: { b: 20, d: 4 }, $unset: ['c'] })).json().data.action).toBe('updated')
    expect((await profile(userId))?.metadata).toEqual({ a: 10, b: 2, d: 4 })
  })

  it('counts the result against the profile limits: an $unset makes room, a $set_once past the limit is a 409', async () => {
    const userId = newUserId()
    const visitor = visitorId()
    await call({ user_id: userId, datafast_visitor_id: visitor, f1: 1, f2: 2, f3: 3, f4: 4, f5: 5, f6: 6 })
    expectError(await call({ user_id: userId, datafast_visitor_id: visitor, $set_once: { f7: 7 } }), 409)
    expect((await call({ user_id: userId, datafast_visitor_id: visitor, f7: 7, $unset: ['f1'] })).json().data.action).toBe('updated')
    expect(Object.keys((await profile(userId))?.metadata ?? {})).toHaveLength(6)
  })

  it.each([
    [{ a: 1, $set_once: { a: 2 } }, /field "a" is named more than once/],
    [{ a: 1, $unset: ['a'] }, /field "a" is named more than once/],
    [{ $set_once: { b: 1 }, $unset: ['b'] }, /field "b" is named more than once/],
    [{ $unset: ['c', 'c'] }, /field "c" is named more than once/],
    [{ $set: { a: 1 } }, /metadata field "\$set" must not start with "\$"/],
    [{ $set_once: ['a'] }, /^\$set_once must be an object/],
    [{ $set_once: { $unset: 1 } }, /must not start with "\$"/],
    [{ $set_once: { nested: { 'a.b': 1 } } }, /must not contain "."/],
    [{ $unset: 'a' }, /^\$unset must be an array of field names/],
    [{ $unset: [1] }, /^\$unset must be an array of field names/],
    [{ $unset: ['a.b'] }, /must not contain "."/],
    [{ $unset: Array.from({ length: 101 }, (_, i) => `f${String(i)}`) }, /at most 100/]
  ])('refuses %j with a 400 naming the rule, storing nothing', async (operators, rule) => {
    const before = await snapshot(app)
    expect(expectError(await call({ user_id: newUserId(), datafast_visitor_id: visitorId(), ...operators }), 400)).toMatch(rule)
    expect(await snapshot(app)).toEqual(before)
  })

  it('accepts 100 $unset names', async () => {
    const response = await call({ user_id: newUserId(), datafast_visitor_id: visitorId(), $unset: Array.from({ length: 100 }, (_, i) => `f${String(i)}`) })
    expect(response.statusCode, response.body).toBe(200)
  })
})

describe('batch identify: items (docs/api.md#batch-identify-semantics)', () => {
  it('checks each item as a single identify body: the same messages, a bad item fails alone', async () => {
    const items: Item[] = [
      { user_id: newUserId(), datafast_visitor_id: visitorId(), plan: 'pro' },
      { user_id: 'undefined', datafast_visitor_id: visitorId() },
      { user_id: newUserId(), datafast_visitor_id: 'not-a-uuid' },
      'not an object' as unknown as Item,
      { user_id: newUserId(), datafast_visitor_id: visitorId(), 'a.b': 1 },
      { user_id: newUserId(), datafast_visitor_id: visitorId(), a: 1, $unset: ['a'] },
      { user_id: newUserId(), datafast_visitor_id: visitorId(), $set_once: { first: 'x' } }
    ]
    const data = await expectSameAsOneByOne(items)
    expect(data.results.map(({ status }) => status)).toEqual(['success', 'error', 'error', 'error', 'error', 'error', 'success'])
    expect(data.results.map(({ index }) => index)).toEqual([0, 1, 2, 3, 4, 5, 6])
    expect(data.counts).toEqual({ created: 2, updated: 0, unchanged: 0, skipped: 0, failed: 5 })
  })

  it('merges two items of one user in order, operators included', async () => {
    const userId = newUserId()
    const visitor = visitorId()
    const data = await expectSameAsOneByOne([
      { user_id: userId, datafast_visitor_id: visitor, a: 1, b: 1, $set_once: { first: 'one' } },
      { user_id: userId, datafast_visitor_id: visitor, a: 2, $set_once: { first: 'two', second: 'two' }, $unset: ['b'] },
      { user_id: userId, datafast_visitor_id: visitor, a: 2 },
      { user_id: userId, datafast_visitor_id: visitor, $unset: ['a'] },
      { user_id: userId, datafast_visitor_id: visitor, $set_once: { a: 3 } }
    ])
    expect(data.results.map(({ action }) => action)).toEqual(['created', 'updated', 'unchanged', 'updated', 'updated'])
    expect(new Set(data.results.map(({ profileId }) => profileId)).size).toBe(1)
  })

  it('leaves a visitor named by items of two users on the later one, as do moves back and forth', async () => {
    const [first, second, third] = [newUserId(), newUserId(), newUserId()]
    const [shared, other] = [visitorId(), visitorId()]
    const data = await expectSameAsOneByOne([
      { user_id: first, datafast_visitor_id: shared },
      { user_id: second, datafast_visitor_id: other },
      { user_id: second, datafast_visitor_id: shared },
      { user_id: third, datafast_visitor_id: other },
      { user_id: first, datafast_visitor_id: other }
    ])
    expect(data.counts).toEqual({ created: 3, updated: 2, unchanged: 0, skipped: 0, failed: 0 })
  })

  it('behaves as one by one on stored profiles: moves away from profiles outside the batch, lists past 16 visitors, unchanged calls', async () => {
    const [owner, mover, many] = [newUserId(), newUserId(), newUserId()]
    const visitors = Array.from({ length: 20 }, () => visitorId())
    const before: Item[] = [
      { user_id: owner, datafast_visitor_id: visitors[0], plan: 'free' },
      { user_id: mover, datafast_visitor_id: visitors[1] },
      { user_id: many, datafast_visitor_id: visitors[2], seats: 1 }
    ]
    await expectSameAsOneByOne([
      { user_id: owner, datafast_visitor_id: visitors[0], plan: 'free' },
      { user_id: mover, datafast_visitor_id: visitors[0], plan: 'pro' },
      ...visitors.slice(3).map((visitor) => ({ user_id: many, datafast_visitor_id: visitor })),
      { user_id: many, datafast_visitor_id: visitors[2], $unset: ['seats'] },
      { user_id: owner, datafast_visitor_id: visitors[0] }
    ], before)
  })

  it('behaves as one by one when its first user is new and later ones are stored: new profiles inserted first, the stored ones read and merged, visitors taken from both', async () => {
    const [owner, mover, full, newcomer, later] = [newUserId(), newUserId(), newUserId(), newUserId(), newUserId()]
    const visitors = Array.from({ length: 6 }, () => visitorId())
    const before: Item[] = [
      { user_id: owner, datafast_visitor_id: visitors[0], plan: 'free' },
      { user_id: mover, datafast_visitor_id: visitors[1], seats: 1 },
      { user_id: full, datafast_visitor_id: visitors[2], f1: 1, f2: 2, f3: 3, f4: 4, f5: 5, f6: 6 }
    ]
    const data = await expectSameAsOneByOne([
      { user_id: newcomer, datafast_visitor_id: visitors[0], $set_once: { source: 'import' } },
      { user_id: owner, datafast_visitor_id: visitors[3], plan: 'pro' },
      { user_id: later, datafast_visitor_id: visitors[1] },
      { user_id: full, datafast_visitor_id: visitors[2], f7: 7 },
      { user_id: mover, datafast_visitor_id: visitors[4], $unset: ['seats'] },
      { user_id: newcomer, datafast_visitor_id: visitors[3] },
      { user_id: owner, datafast_visitor_id: visitors[0] },
      { user_id: later, datafast_visitor_id: visitors[5], plan: 'team' }
    ], before)
    expect(data.counts).toEqual({ created: 2, updated: 5, unchanged: 0, skipped: 0, failed: 1 })
  })

  it('behaves as one by one when every user is new but their visitors are linked to stored ones (an import of users seen before)', async () => {
    const [owner, mover] = [newUserId(), newUserId()]
    const [first, second] = [visitorId(), visitorId()]
    const data = await expectSameAsOneByOne([
      { user_id: newUserId(), datafast_visitor_id: first },
      { user_id: newUserId(), datafast_visitor_id: second, plan: 'pro' },
      { user_id: newUserId(), datafast_visitor_id: visitorId() }
    ], [{ user_id: owner, datafast_visitor_id: first }, { user_id: mover, datafast_visitor_id: second }])
    expect(data.counts).toEqual({ created: 3, updated: 0, unchanged: 0, skipped: 0, failed: 0 })
  })

  it('checks the profile limits as if sequentially: a 409 item stores nothing and the next items go on', async () => {
    const userId = newUserId()
    const visitor = visitorId()
    const data = await expectSameAsOneByOne([
      { user_id: userId, datafast_visitor_id: visitor, f1: 1, f2: 2, f3: 3, f4: 4, f5: 5 },
      { user_id: userId, datafast_visitor_id: visitor, f6: 6 },
      { user_id: userId, datafast_visitor_id: visitor, f7: 7 },
      { user_id: userId, datafast_visitor_id: visitor, $unset: ['f1'], f7: 7 },
      { user_id: newUserId(), datafast_visitor_id: visitorId(), f1: 1, f2: 2, f3: 3, f4: 4, f5: 5, f6: 6, f7: 7 }
    ])
    expect(data.results.map(({ status, error }) => error?.code ?? status)).toEqual(['success', 'success', 409, 'success', 409])
    expect(data.results[2]?.error?.message).toMatch(/PROFILE_MAX_FIELDS/)
  })

  it('a second identical batch is unchanged throughout', async () => {
    const site = await createTestWebsite(app)
    const items = Array.from({ length: 30 }, (_, n) => ({ user_id: `same_${String(n % 10)}`, datafast_visitor_id: visitorId(), n: n % 10, $set_once: { first: n } }))
    expect((await batchData(site, items)).counts).toEqual({ created: 10, updated: 20, unchanged: 0, skipped: 0, failed: 0 })
    expect((await batchData(site, items)).counts).toEqual({ created: 0, updated: 0, unchanged: 30, skipped: 0, failed: 0 })
  })

  it('answers skipped for every valid item on a cookieless website, and stores nothing', async () => {
    const site = await createTestWebsite(app, { cookieless: true })
    const before = await snapshot(app)
    const data = await batchData(site, [{ user_id: newUserId(), datafast_visitor_id: visitorId() }, { user_id: '' }])
    expect(data.results[0]).toEqual({ index: 0, status: 'success', action: 'skipped', profileId: null })
    expect(data.results[1]?.error?.code).toBe(400)
    expect(data.counts).toEqual({ created: 0, updated: 0, unchanged: 0, skipped: 1, failed: 1 })
    expect(await snapshot(app)).toEqual(before)
  })
})

describe('batch identify: the envelope (docs/api.md#batch-identify-body)', () => {
  const item = () => ({ user_id: newUserId(), datafast_visitor_id: visitorId() })
  it.each([
    ['an array', [], /JSON object/],
    ['a string', 'items', /JSON object|JSON/],
    ['no items', {}, /items must be an array/],
    ['items not an array', { items: { a: 1 } }, /items must be an array/],
    ['no item', { items: [] }, /1 to 50/],
    ['too many items', { items: Array.from({ length: 51 }, item) }, /51.*1 to 50 .*BATCH_MAX_ITEMS/],
    ['another key', { items: [item()], extra: 1 }, /only items/]
  ])('refuses %s with a 400 for the whole call, storing nothing', async (_, body, rule) => {
    const site = await createTestWebsite(app)
    const before = await snapshot(app)
    const response = await batch({ auth: site.key, body, headers: { 'content-type': 'application/json' } })
    expect(expectError(response, 400)).toMatch(rule)
    expect(await snapshot(app)).toEqual(before)
  })

  it('takes 50 items, and a body over 64 KiB (the single identify limit)', async () => {
    const site = await createTestWebsite(app)
    const items = Array.from({ length: 50 }, () => ({ ...item(), note: 'x'.repeat(2000) }))
    expect((await batchData(site, items)).counts.created).toBe(50)
  })

  it('answers a body over BATCH_BODY_LIMIT_BYTES with a 413, storing nothing', async () => {
    const site = await createTestWebsite(app)
    const before = await snapshot(app)
    const body = JSON.stringify({ items: [{ ...item(), note: 'x'.repeat(5 * 1024 * 1024) }] })
    expectError(await batch({ auth: site.key, body, headers: { 'content-type': 'application/json' } }), 413)
    expect(await snapshot(app)).toEqual(before)
  })
})

describe('batch identify: authentication (docs/api.md#batch-identify-body)', () => {
  const body = () => ({ items: [{ user_id: newUserId(), datafast_visitor_id: visitorId() }] })

  it('takes the website key, or a dft_ token with identify:write and websiteId', async () => {
    const site = await createTestWebsite(app)
    const { token } = await createTestToken(app, { accountId: site.accountId })
    expect((await batch({ auth: site.key, body: body() })).statusCode).toBe(200)
    expect((await batch({ auth: site.key, body: body(), websiteId: site.websiteId })).statusCode).toBe(200)
    const response = await batch({ auth: token, body: body(), websiteId: site.websiteId })
    expect(response.statusCode, response.body).toBe(200)
    expect(response.json<{ data: BatchData }>().data.counts.created).toBe(1)
  })

  it('refuses what identify refuses, storing nothing', async () => {
    const site = await createTestWebsite(app)
    const other = await createTestWebsite(app)
    const { token } = await createTestToken(app, { accountId: site.accountId })
    const { token: readOnly } = await createTestToken(app, { accountId: site.accountId, permissions: ['identify:read'] })
    const before = await snapshot(app)
    expectError(await batch({ auth: 'df_nope', body: body() }), 401)
    expectError(await batch({ auth: site.key, body: body(), websiteId: other.websiteId }), 403)
    expectError(await batch({ auth: token, body: body() }), 400)
    expectError(await batch({ auth: token, body: body(), websiteId: other.websiteId }), 404)
    expectError(await batch({ auth: readOnly, body: body(), websiteId: site.websiteId }), 403)
    expect(await snapshot(app)).toEqual(before)
  })
})

describe('batch identify: rate limit (docs/api.md#batch-identify-body)', () => {
  it('counts a batch as one call', async () => {
    const limited: App = await buildTestApp({ RATE_LIMIT_MAX: 2 })
    try {
      const site = await createTestWebsite(limited)
      const send = async () => await limited.inject({
        method: 'POST',
        url: '/api/v1/identify/batch',
        headers: { authorization: `Bearer ${site.key}` },
        payload: { items: Array.from({ length: 5 }, () => ({ user_id: newUserId(), datafast_visitor_id: visitorId() })) }
      })
      expect((await send()).statusCode).toBe(200)
      expect((await send()).statusCode).toBe(200)
      expectError(await send(), 429)
    } finally {
      await limited.close()
    }
  })
})
