import { createHash, randomBytes } from 'node:crypto'
import { ObjectId } from 'mongodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.js'
import { buildTestApp, createTestToken, createTestWebsite, expectError, expectSuccess, identify, visitorId } from './helper.js'

/**
 * The table of docs/api.md#authentication-checks, row by row, over HTTP
 * against the real database.
 */

// This file makes many failed calls on purpose, all from one address: the
// throttle on failed authentications (a 429, tested in errors.test.ts) is set
// out of reach so that every row of the table gets its own status.
const app = await buildTestApp({ AUTH_FAILURE_MAX: 1_000_000 })
afterAll(async () => { await app.close() })

const body = (userId = 'user_1'): Record<string, unknown> => ({ user_id: userId, datafast_visitor_id: visitorId() })


/** A POST with a raw url, headers and payload, for what the identify helper cannot send. */
async function post (options: { url?: string, authorization?: string, payload?: string | Buffer | object, headers?: Record<string, string> }) {
  return await app.inject({
    method: 'POST',
    url: options.url ?? '/api/v1/identify',
    headers: {
      ...(options.authorization === undefined ? {} : { authorization: options.authorization }),
      ...options.headers
    },
    ...(options.payload === undefined ? {} : { payload: options.payload })
  })
}

/** A key or token of the right shape that was never issued. */
const unknownSecret = (prefix: 'df_' | 'dft_'): string => prefix + randomBytes(32).toString('base64url')

/** A 24-hex id no website has. */
const unusedObjectId = (): string => randomBytes(12).toString('hex')

describe('401: the caller is not authenticated', () => {
  it('no Authorization header', async () => {
    expectError(await identify(app, { body: body() }), 401)
  })

  it('another scheme than Bearer (Basic)', async () => {
    const site = await createTestWebsite(app)
    const basic = `Basic ${Buffer.from(`user:${site.key}`).toString('base64')}`
    expectError(await post({ authorization: basic, payload: body() }), 401)
    // Even the valid key itself under another scheme is refused.
    expectError(await post({ authorization: `Token ${site.key}`, payload: body() }), 401)
  })

  it('an empty Bearer token', async () => {
    expectError(await post({ authorization: 'Bearer', payload: body() }), 401)
    expectError(await post({ authorization: 'Bearer ', payload: body() }), 401)
    expectError(await post({ authorization: 'Bearer    ', payload: body() }), 401)
    expectError(await post({ authorization: '', payload: body() }), 401)
  })

  it('a token that starts with neither df_ nor dft_', async () => {
    expectError(await identify(app, { auth: 'abc123', body: body() }), 401)
    expectError(await identify(app, { auth: randomBytes(32).toString('base64url'), body: body() }), 401)
    expectError(await identify(app, { auth: 'sk_live_' + randomBytes(32).toString('base64url'), body: body() }), 401)
    // Only a prefix, nothing after it.
    expectError(await identify(app, { auth: 'df_', body: body() }), 401)
    expectError(await identify(app, { auth: 'dft_', body: body() }), 401)
  })

  it('a well-formed but unknown df_ website key', async () => {
    await createTestWebsite(app)
    expectError(await identify(app, { auth: unknownSecret('df_'), body: body() }), 401)
    expectError(await identify(app, { auth: 'df_short', body: body() }), 401)
  })

  it('a well-formed but unknown dft_ account token', async () => {
    const site = await createTestWebsite(app)
    expectError(await identify(app, { auth: unknownSecret('dft_'), websiteId: site.websiteId, body: body() }), 401)
    expectError(await identify(app, { auth: unknownSecret('dft_'), body: body() }), 401)
  })

  it('a revoked df_ website key', async () => {
    const site = await createTestWebsite(app)
    expectSuccess(await identify(app, { auth: site.key, body: body() }))
    expect(await app.repositories.credentials.revokeWebsiteKey(site.keyId)).toBe(true)
    expectError(await identify(app, { auth: site.key, body: body() }), 401)
    expectError(await identify(app, { auth: site.key, websiteId: site.websiteId, body: body() }), 401)
  })

  it('a revoked dft_ account token', async () => {
    const site = await createTestWebsite(app)
    const { id, token } = await createTestToken(app, { accountId: site.accountId })
    expectSuccess(await identify(app, { auth: token, websiteId: site.websiteId, body: body() }))
    expect(await app.repositories.credentials.revokeAccountToken(id)).toBe(true)
    expectError(await identify(app, { auth: token, websiteId: site.websiteId, body: body() }), 401)
  })

  it('an expired dft_ account token, while one expiring later still works', async () => {
    const site = await createTestWebsite(app)
    const expired = await createTestToken(app, { accountId: site.accountId, expiresAt: new Date(Date.now() - 60_000) })
    expectError(await identify(app, { auth: expired.token, websiteId: site.websiteId, body: body() }), 401)
    const valid = await createTestToken(app, { accountId: site.accountId, expiresAt: new Date(Date.now() + 3_600_000) })
    expectSuccess(await identify(app, { auth: valid.token, websiteId: site.websiteId, body: body() }))
  })
})

describe('df_ website keys act on their own website', () => {
  it('websiteId omitted: the key\'s website', async () => {
    const site = await createTestWebsite(app)
    expectSuccess(await identify(app, { auth: site.key, body: body() }))
  })

  it('websiteId equal to the key\'s website, in lowercase and in uppercase hex', async () => {
    const site = await createTestWebsite(app)
    const vid = visitorId()
    const first = await identify(app, { auth: site.key, websiteId: site.websiteId, body: { user_id: 'same', datafast_visitor_id: vid } })
    expectSuccess(first)
    const upper = await identify(app, { auth: site.key, websiteId: site.websiteId.toUpperCase(), body: { user_id: 'same', datafast_visitor_id: vid } })
    expectSuccess(upper)
    // The same website either way, so the same profile.
    expect(upper.json().data.profileId).toBe(first.json().data.profileId)
    expect(upper.json().data.action).toBe('unchanged')
  })

  it('websiteId of another website: 403', async () => {
    const site = await createTestWebsite(app)
    const sibling = await createTestWebsite(app, { accountId: site.accountId })
    const stranger = await createTestWebsite(app)
    expectError(await identify(app, { auth: site.key, websiteId: sibling.websiteId, body: body() }), 403)
    expectError(await identify(app, { auth: site.key, websiteId: stranger.websiteId, body: body() }), 403)
    expectError(await identify(app, { auth: site.key, websiteId: unusedObjectId(), body: body() }), 403)
  })
})

describe('dft_ account tokens', () => {
  it('without the identify:write permission: 403', async () => {
    const site = await createTestWebsite(app)
    const none = await createTestToken(app, { accountId: site.accountId, permissions: [] })
    expectError(await identify(app, { auth: none.token, websiteId: site.websiteId, body: body() }), 403)
    const other = await createTestToken(app, { accountId: site.accountId, permissions: ['profiles:read', 'identify:read', 'identify:*'] })
    expectError(await identify(app, { auth: other.token, websiteId: site.websiteId, body: body() }), 403)
  })

  it('with identify:write or with *: ok', async () => {
    const site = await createTestWebsite(app)
    const write = await createTestToken(app, { accountId: site.accountId, permissions: ['profiles:read', 'identify:write'] })
    expectSuccess(await identify(app, { auth: write.token, websiteId: site.websiteId, body: body() }))
    const all = await createTestToken(app, { accountId: site.accountId, permissions: ['*'] })
    expectSuccess(await identify(app, { auth: all.token, websiteId: site.websiteId, body: body() }))
  })

  it('without websiteId: 400', async () => {
    const site = await createTestWebsite(app)
    const { token } = await createTestToken(app, { accountId: site.accountId })
    const message = expectError(await identify(app, { auth: token, body: body() }), 400)
    expect(message).toMatch(/websiteId/)
  })

  it('a website that does not exist and a website of another account get the same 404', async () => {
    const site = await createTestWebsite(app)
    const stranger = await createTestWebsite(app)
    const { token } = await createTestToken(app, { accountId: site.accountId })
    const missing = await identify(app, { auth: token, websiteId: unusedObjectId(), body: body() })
    const foreign = await identify(app, { auth: token, websiteId: stranger.websiteId, body: body() })
    expectError(missing, 404)
    expectError(foreign, 404)
    expect(foreign.json()).toStrictEqual(missing.json())
    // Naming another account's website in the allow-list changes nothing.
    const listed = await createTestToken(app, { accountId: site.accountId, websiteIds: [stranger.websiteId] })
    const listedForeign = await identify(app, { auth: listed.token, websiteId: stranger.websiteId, body: body() })
    expectError(listedForeign, 404)
    expect(listedForeign.json()).toStrictEqual(missing.json())
  })

  it('an allow-list that does not contain the website: 403; one that contains it: ok', async () => {
    const site = await createTestWebsite(app)
    const sibling = await createTestWebsite(app, { accountId: site.accountId })
    const onlySibling = await createTestToken(app, { accountId: site.accountId, websiteIds: [sibling.websiteId] })
    expectError(await identify(app, { auth: onlySibling.token, websiteId: site.websiteId, body: body() }), 403)
    expectSuccess(await identify(app, { auth: onlySibling.token, websiteId: sibling.websiteId, body: body() }))
    const both = await createTestToken(app, { accountId: site.accountId, websiteIds: [sibling.websiteId, site.websiteId] })
    expectSuccess(await identify(app, { auth: both.token, websiteId: site.websiteId, body: body() }))
    // An empty allow-list means every website of the account.
    const every = await createTestToken(app, { accountId: site.accountId, websiteIds: [] })
    expectSuccess(await identify(app, { auth: every.token, websiteId: site.websiteId, body: body() }))
    expectSuccess(await identify(app, { auth: every.token, websiteId: sibling.websiteId.toUpperCase(), body: body() }))
  })
})

describe('websiteId must be 24 hex characters', () => {
  const malformed = ['abc', '0123456789abcdef0123456', '0123456789abcdef012345678', 'zzzzzzzzzzzzzzzzzzzzzzzz', '0123456789abcdef0123456g', '']

  it('with a dft_ token: 400 naming websiteId', async () => {
    const site = await createTestWebsite(app)
    const { token } = await createTestToken(app, { accountId: site.accountId })
    for (const websiteId of malformed) {
      const message = expectError(await identify(app, { auth: token, websiteId, body: body() }), 400)
      expect(message, JSON.stringify(websiteId)).toMatch(/websiteId/)
    }
  })

  it('with a df_ key: 400', async () => {
    const site = await createTestWebsite(app)
    for (const websiteId of malformed) {
      expectError(await identify(app, { auth: site.key, websiteId, body: body() }), 400)
    }
  })

  it('a repeated websiteId parameter: 400, even when both are the right website', async () => {
    const site = await createTestWebsite(app)
    const { token } = await createTestToken(app, { accountId: site.accountId })
    const url = `/api/v1/identify?websiteId=${site.websiteId}&websiteId=${site.websiteId}`
    expectError(await post({ url, authorization: `Bearer ${token}`, payload: body() }), 400)
    expectError(await post({ url, authorization: `Bearer ${site.key}`, payload: body() }), 400)
    const sibling = await createTestWebsite(app, { accountId: site.accountId })
    const mixed = `/api/v1/identify?websiteId=${site.websiteId}&websiteId=${sibling.websiteId}`
    expectError(await post({ url: mixed, authorization: `Bearer ${token}`, payload: body() }), 400)
  })

  it('a websiteId[$ne]=x query string authenticates nothing and does not crash', async () => {
    const site = await createTestWebsite(app)
    const { token } = await createTestToken(app, { accountId: site.accountId })
    for (const query of ['websiteId[$ne]=x', 'websiteId%5B%24ne%5D=x', `websiteId[$ne]=${site.websiteId}`, 'websiteId[$gt]=']) {
      const url = `/api/v1/identify?${query}`
      expectError(await post({ url, payload: body() }), 401)
      expectError(await post({ url, authorization: `Bearer ${unknownSecret('df_')}`, payload: body() }), 401)
      expectError(await post({ url, authorization: `Bearer ${unknownSecret('dft_')}`, payload: body() }), 401)
      // An account token names no website with it: websiteId is missing or malformed, a 400 either way.
      expectError(await post({ url, authorization: `Bearer ${token}`, payload: body() }), 400)
      // A website key either ignores the stray parameter (its own website) or refuses it.
      const keyed = await post({ url, authorization: `Bearer ${site.key}`, payload: body() })
      expect([200, 400], keyed.body).toContain(keyed.statusCode)
      if (keyed.statusCode === 400) expectError(keyed, 400)
    }
  })
})

describe('suspended tracking', () => {
  it('a suspended website gets 403 with a key and with a token; resumed, 200 again', async () => {
    const site = await createTestWebsite(app)
    const { token } = await createTestToken(app, { accountId: site.accountId })
    expectSuccess(await identify(app, { auth: site.key, body: body() }))
    expect(await app.repositories.websites.setSuspended(site.websiteId, true)).toBe(true)
    expectError(await identify(app, { auth: site.key, body: body() }), 403)
    expectError(await identify(app, { auth: token, websiteId: site.websiteId, body: body() }), 403)
    expect(await app.repositories.websites.setSuspended(site.websiteId, false)).toBe(true)
    expectSuccess(await identify(app, { auth: site.key, body: body() }))
    expectSuccess(await identify(app, { auth: token, websiteId: site.websiteId, body: body() }))
  })
})

describe('with the auth cache on', () => {
  // docs/api.md#credential-cache: resolved keys, tokens and websites are cached
  // for a bounded lifetime, so a revocation or a suspension takes effect
  // within AUTH_CACHE_TTL_MS. The tests use a short one.
  const ttl = 1000
  const afterTtl = async () => { await new Promise((resolve) => setTimeout(resolve, ttl + 200)) }
  let cached: Awaited<ReturnType<typeof buildTestApp>>
  beforeAll(async () => { cached = await buildTestApp({ AUTH_CACHE_TTL_MS: ttl }) })
  afterAll(async () => { await cached.close() })

  it('defaults to a lifetime of at most 60 s', () => {
    const defaultTtl = loadConfig({}).AUTH_CACHE_TTL_MS
    expect(defaultTtl).toBeGreaterThan(0)
    expect(defaultTtl).toBeLessThanOrEqual(60_000)
  })

  it('a website created after a 404 works at once: missing websites are not cached', async () => {
    const site = await createTestWebsite(cached)
    const { token } = await createTestToken(cached, { accountId: site.accountId })
    const later = '0123456789abcdef01234567'
    expectError(await identify(cached, { auth: token, websiteId: later, body: body() }), 404)
    await cached.mongo.db.collection('websites').insertOne({
      _id: new ObjectId(later), accountId: new ObjectId(site.accountId), domain: 'later.example', cookieless: false, suspended: false, createdAt: new Date()
    })
    expectSuccess(await identify(cached, { auth: token, websiteId: later, body: body() }))
  })

  it('a revoked df_ key is refused within the cache lifetime', async () => {
    const site = await createTestWebsite(cached)
    expectSuccess(await identify(cached, { auth: site.key, body: body() }))
    await cached.repositories.credentials.revokeWebsiteKey(site.keyId)
    await afterTtl()
    expectError(await identify(cached, { auth: site.key, body: body() }), 401)
  })

  it('a revoked dft_ token is refused within the cache lifetime', async () => {
    const site = await createTestWebsite(cached)
    const { id, token } = await createTestToken(cached, { accountId: site.accountId })
    expectSuccess(await identify(cached, { auth: token, websiteId: site.websiteId, body: body() }))
    await cached.repositories.credentials.revokeAccountToken(id)
    await afterTtl()
    expectError(await identify(cached, { auth: token, websiteId: site.websiteId, body: body() }), 401)
  })

  it('a dft_ token is refused as soon as it has expired, cached or not', async () => {
    const longCache = await buildTestApp({ AUTH_CACHE_TTL_MS: 60_000 })
    try {
      const other = await createTestWebsite(longCache)
      // Enough time for the first call on a loaded machine; the cache would keep the token for a minute.
      const { token } = await createTestToken(longCache, { accountId: other.accountId, expiresAt: new Date(Date.now() + 4000) })
      expectSuccess(await identify(longCache, { auth: token, websiteId: other.websiteId, body: body() }))
      await new Promise((resolve) => setTimeout(resolve, 4500))
      expectError(await identify(longCache, { auth: token, websiteId: other.websiteId, body: body() }), 401)
    } finally {
      await longCache.close()
    }
  })

  it('a suspended website is refused within the cache lifetime, and accepted again after resuming', async () => {
    const site = await createTestWebsite(cached)
    expectSuccess(await identify(cached, { auth: site.key, body: body() }))
    await cached.repositories.websites.setSuspended(site.websiteId, true)
    await afterTtl()
    expectError(await identify(cached, { auth: site.key, body: body() }), 403)
    await cached.repositories.websites.setSuspended(site.websiteId, false)
    await afterTtl()
    expectSuccess(await identify(cached, { auth: site.key, body: body() }))
  })
})

describe('authentication comes before the body', () => {
  const schemaWords = /user_id|datafast_visitor_id|UUID|JSON|body|content.type/i

  it('an unauthenticated call with an invalid body gets 401 and learns nothing of the schema', async () => {
    for (const payload of [{}, { user_id: 42 }, [], { datafast_visitor_id: 'nope' }]) {
      const message = expectError(await post({ payload }), 401)
      expect(message).not.toMatch(schemaWords)
      expectError(await post({ authorization: `Bearer ${unknownSecret('df_')}`, payload }), 401)
    }
  })

  it('an unauthenticated call with malformed JSON gets 401', async () => {
    const headers = { 'content-type': 'application/json' }
    const message = expectError(await post({ payload: '{"user_id": ', headers }), 401)
    expect(message).not.toMatch(schemaWords)
    expectError(await post({ authorization: 'Basic Zm9vOmJhcg==', payload: '{"user_id": ', headers }), 401)
    expectError(await post({ authorization: `Bearer ${unknownSecret('dft_')}`, payload: '{"user_id": ', headers }), 401)
    expectError(await post({ payload: '', headers }), 401)
    expectError(await post({ payload: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), headers }), 401)
  })

  it('an unauthenticated call with a wrong content type gets 401', async () => {
    const payload = JSON.stringify(body())
    const message = expectError(await post({ payload, headers: { 'content-type': 'text/plain' } }), 401)
    expect(message).not.toMatch(schemaWords)
    expectError(await post({ payload: 'user_id=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 401)
    expectError(await post({ authorization: `Bearer ${unknownSecret('df_')}`, payload, headers: { 'content-type': 'text/plain' } }), 401)
  })
})

describe('secrets are stored only hashed', () => {
  const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')

  /** Bits of entropy of the random part, from its length and the alphabet it is written in. */
  function entropyBits (random: string): number {
    if (/^[0-9a-f]+$/.test(random) || /^[0-9A-F]+$/.test(random)) return random.length * 4
    if (/^[A-Za-z0-9_-]+$/.test(random) || /^[A-Za-z0-9+/]+=*$/.test(random)) return random.replace(/=+$/, '').length * 6
    return 0
  }

  function expectHashedOnly (stored: unknown, secret: string, prefix: string): void {
    const text = JSON.stringify(stored)
    const random = secret.slice(prefix.length)
    expect(text).not.toContain(secret)
    // No long piece of the random part either: at most a short display prefix.
    for (let start = 0; start + 16 <= random.length; start++) {
      expect(text).not.toContain(random.slice(start, start + 16))
    }
    const hashes = [sha256(secret), sha256(random)]
    expect(hashes.some((hash) => text.includes(hash)), `a SHA-256 hex of the secret in ${text}`).toBe(true)
  }

  it('df_ website keys: df_ prefix, at least 192 bits of entropy, only a SHA-256 stored', async () => {
    const keys = new Set<string>()
    for (let i = 0; i < 5; i++) {
      const site = await createTestWebsite(app)
      expect(site.key.startsWith('df_')).toBe(true)
      expect(site.key.startsWith('dft_')).toBe(false)
      const random = site.key.slice(3)
      expect(entropyBits(random), site.key).toBeGreaterThanOrEqual(192)
      keys.add(site.key)
      const stored = await app.mongo.db.collection('websiteKeys').find({}).toArray()
      expect(stored.length).toBeGreaterThan(0)
      expectHashedOnly(stored, site.key, 'df_')
    }
    expect(keys.size).toBe(5)
  })

  it('dft_ account tokens: dft_ prefix, at least 192 bits of entropy, only a SHA-256 stored', async () => {
    const site = await createTestWebsite(app)
    const tokens = new Set<string>()
    for (let i = 0; i < 5; i++) {
      const { token } = await createTestToken(app, { accountId: site.accountId, permissions: ['*'], websiteIds: [site.websiteId] })
      expect(token.startsWith('dft_')).toBe(true)
      const random = token.slice(4)
      expect(entropyBits(random), token).toBeGreaterThanOrEqual(192)
      tokens.add(token)
      const stored = await app.mongo.db.collection('accountTokens').find({}).toArray()
      expect(stored.length).toBeGreaterThan(0)
      expectHashedOnly(stored, token, 'dft_')
      // The token works, so what is stored is enough to check it.
      expectSuccess(await identify(app, { auth: token, websiteId: site.websiteId, body: body() }))
    }
    expect(tokens.size).toBe(5)
  })

  it('no secret of any kind appears in any collection', async () => {
    const site = await createTestWebsite(app)
    const { token } = await createTestToken(app, { accountId: site.accountId })
    expectSuccess(await identify(app, { auth: site.key, body: body() }))
    expectSuccess(await identify(app, { auth: token, websiteId: site.websiteId, body: body() }))
    const collections = await app.mongo.db.listCollections({}, { nameOnly: true }).toArray()
    for (const { name } of collections) {
      const text = JSON.stringify(await app.mongo.db.collection(name).find({}).toArray())
      expect(text, name).not.toContain(site.key)
      expect(text, name).not.toContain(token)
      expect(text, name).not.toContain(site.key.slice(3, 30))
      expect(text, name).not.toContain(token.slice(4, 30))
    }
  })
})
