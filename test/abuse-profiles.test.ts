import type { LightMyRequestResponse } from 'fastify'
import { afterAll, describe, expect, it } from 'vitest'
import { profileIdFor } from '../src/storage/repositories/profiles.js'
import { buildTestApp, createTestToken, createTestWebsite, expectError, visitorId } from './helper.js'
import { identified } from './profiles-helper.js'

/*
 * Hostile and malformed calls of the profile routes (docs/api.md#profiles),
 * in the manner of test/abuse.test.ts: each refused call gets its documented
 * status in the envelope, never a 500, never another website's data, and a
 * refused erasure changes nothing in the database.
 */

const app = await buildTestApp()
afterAll(async () => { await app.close() })

const site = await createTestWebsite(app)
const other = await createTestWebsite(app)
const USER = 'abuse_user'
const OTHER_USER = 'other_site_user'
const own = await identified(app, site, USER, visitorId(), { name: 'Ada' })
const foreignVisitor = visitorId()
const foreign = await identified(app, other, OTHER_USER, foreignVisitor, { name: 'Mallory' })

async function send (options: { method?: 'GET' | 'DELETE', url: string, key?: string, headers?: Record<string, string>, payload?: string }): Promise<LightMyRequestResponse> {
  return await app.inject({
    method: options.method ?? 'GET',
    url: options.url,
    headers: { ...(options.key === undefined ? {} : { authorization: `Bearer ${options.key}` }), ...options.headers },
    ...(options.payload === undefined ? {} : { payload: options.payload })
  })
}

/** Every document of every collection as sorted JSON texts. */
async function snapshot (): Promise<Record<string, string[]>> {
  const result: Record<string, string[]> = {}
  for (const { name } of await app.mongo.db.listCollections({}, { nameOnly: true }).toArray()) {
    result[name] = (await app.mongo.db.collection(name).find({}).toArray()).map((document) => JSON.stringify(document)).sort()
  }
  return result
}

/** An answer of this website's data only: the other website's user and metadata appear nowhere in it. */
function expectNoForeignData (response: LightMyRequestResponse, context: string): void {
  expect(response.statusCode, `${context}: ${response.body}`).toBeLessThan(500)
  for (const value of [OTHER_USER, 'Mallory', foreign.profileId, foreignVisitor]) expect(response.body, context).not.toContain(value)
}

describe('query-operator syntax and odd values in the query string', () => {
  const queries = [
    'user_id[$ne]=x', 'user_id[$gt]=', 'user_id%5B%24ne%5D=x', 'user_id[]=x', 'user_id=a&user_id=b',
    'user_id={"$ne":null}', `user_id=${OTHER_USER}`, 'user_id=%00', 'user_id=%ED%A0%80', 'user_id=%FF',
    'limit[$gt]=0', 'limit=1e2', 'limit=0x10', 'limit=%20%31', 'limit=99999999999999999999',
    'cursor[$gt]=', 'cursor={"$gt":""}', 'cursor=%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00',
    `websiteId[$ne]=${site.websiteId}`, `websiteId=${other.websiteId}`, `websiteId=${site.websiteId}&websiteId=${other.websiteId}`
  ]

  it.each(queries)('GET /api/v1/profiles?%s: this website\'s data or a 4xx, never another website\'s, never a 500', async (query) => {
    const response = await send({ url: `/api/v1/profiles?${query}`, key: site.key })
    expectNoForeignData(response, query)
    if (response.statusCode !== 200) expectError(response, response.statusCode)
  })

  it('a cursor made from another website\'s profile id only moves within this website', async () => {
    const cursor = Buffer.from(foreign.profileId, 'hex').toString('base64url')
    const response = await send({ url: `/api/v1/profiles?cursor=${cursor}`, key: site.key })
    expect(response.statusCode).toBe(200)
    expectNoForeignData(response, 'foreign cursor')
  })

  it('a dft_ token with operator syntax in websiteId gets 400 naming websiteId', async () => {
    const { token } = await createTestToken(app, { accountId: site.accountId, permissions: ['*'] })
    for (const query of ['websiteId[$ne]=x', 'websiteId[]=x', `websiteId=${site.websiteId}&websiteId=${site.websiteId}`, 'websiteId={"$ne":"x"}']) {
      expect(expectError(await send({ url: `/api/v1/profiles?${query}`, key: token }), 400), query).toMatch(/websiteId/)
    }
  })
})

describe('hostile path parameters', () => {
  const profileIds = ['{"$ne":null}', '%7B%22%24ne%22%3Anull%7D', '..%2F..%2Fhealthz', '%00', 'a'.repeat(10_000), `${own.profileId}%00`, own.profileId.slice(1)]
  const visitorIds = ['{"$ne":null}', '%00', 'x'.repeat(10_000), '00000000-0000-0000-0000-00000000000g', `${visitorId()}%00`]

  // 414: a parameter longer than Fastify's maxParamLength (100 characters).
  it.each(profileIds.map((id) => [id.slice(0, 40), id]))('GET and DELETE /api/v1/profiles/%s: 400, 404 or 414, nothing erased', async (_label, id) => {
    const before = await snapshot()
    for (const method of ['GET', 'DELETE'] as const) {
      const response = await send({ method, url: `/api/v1/profiles/${id}`, key: site.key })
      expect([400, 404, 414], `${method} ${response.body.slice(0, 200)}`).toContain(response.statusCode)
      expectError(response, response.statusCode)
    }
    expect(await snapshot()).toStrictEqual(before)
  })

  it('a 414 does not send the over-long URL back', async () => {
    const response = await send({ url: `/api/v1/profiles/${'a'.repeat(10_000)}`, key: site.key })
    expect(expectError(response, 414)).not.toContain('aaaa')
    expect(response.body.length).toBeLessThan(200)
  })

  it.each(visitorIds.map((id) => [id.slice(0, 40), id]))('GET /api/v1/visitors/%s/profile: 400, 404 or 414', async (_label, id) => {
    const response = await send({ url: `/api/v1/visitors/${id}/profile`, key: site.key })
    expect([400, 404, 414], response.body.slice(0, 200)).toContain(response.statusCode)
    expectError(response, response.statusCode)
  })
})

describe('reaching for another website\'s profiles', () => {
  it('a key cannot read or erase another website\'s profile by its id, user_id or visitor: 404 on its own website, 403 naming the other', async () => {
    const before = await snapshot()
    const reads = [`/api/v1/profiles/${foreign.profileId}`, `/api/v1/profiles?user_id=${OTHER_USER}`, `/api/v1/visitors/${foreignVisitor}/profile`]
    for (const url of reads) {
      expectError(await send({ url, key: site.key }), 404)
      expectError(await send({ url: `${url}${url.includes('?') ? '&' : '?'}websiteId=${other.websiteId}`, key: site.key }), 403)
    }
    expectError(await send({ method: 'DELETE', url: `/api/v1/profiles/${foreign.profileId}`, key: site.key }), 404)
    expectError(await send({ method: 'DELETE', url: `/api/v1/profiles/${foreign.profileId}?websiteId=${other.websiteId}`, key: site.key }), 403)
    // The other website's profile id derived from this website's user is a different id.
    expect(profileIdFor(site.websiteId, OTHER_USER).toHexString()).not.toBe(foreign.profileId)
    expect(await snapshot()).toStrictEqual(before)
  })

  it('a token of another account, even listing this website, gets 404 and erases nothing', async () => {
    const { token } = await createTestToken(app, { accountId: other.accountId, permissions: ['*'], websiteIds: [site.websiteId] })
    const before = await snapshot()
    expectError(await send({ url: `/api/v1/profiles?websiteId=${site.websiteId}`, key: token }), 404)
    expectError(await send({ method: 'DELETE', url: `/api/v1/profiles/${own.profileId}?websiteId=${site.websiteId}`, key: token }), 404)
    expect(await snapshot()).toStrictEqual(before)
  })

  it('a revoked key and an expired token get 401 and erase nothing', async () => {
    const victim = await createTestWebsite(app, { accountId: site.accountId })
    await app.repositories.credentials.revokeWebsiteKey(victim.keyId)
    const { token } = await createTestToken(app, { accountId: site.accountId, permissions: ['*'], expiresAt: new Date(Date.now() - 1000) })
    const before = await snapshot()
    expectError(await send({ method: 'DELETE', url: `/api/v1/profiles/${own.profileId}`, key: victim.key }), 401)
    expectError(await send({ method: 'DELETE', url: `/api/v1/profiles/${own.profileId}?websiteId=${site.websiteId}`, key: token }), 401)
    expect(await snapshot()).toStrictEqual(before)
  })
})

describe('bodies sent to the profile routes', () => {
  it('a DELETE with a body over the limit gets 413, and one with a broken JSON body a 400; neither erases', async () => {
    const before = await snapshot()
    const url = `/api/v1/profiles/${own.profileId}`
    expectError(await send({ method: 'DELETE', url, key: site.key, headers: { 'content-type': 'application/json' }, payload: `{"pad":"${'x'.repeat(100_000)}"}` }), 413)
    expectError(await send({ method: 'DELETE', url, key: site.key, headers: { 'content-type': 'application/json' }, payload: '{"broken' }), 400)
    expect(await snapshot()).toStrictEqual(before)
  })
})
