import { Writable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import { hashSecret } from '../src/domain/credentials.js'
import { buildTestApp, createTestToken, createTestWebsite, expectError, expectSuccess, identify, visitorId } from './helper.js'
import { adminCall, createOwner, dataOf, ISO, K_KEYS, T_KEYS, W_KEYS } from './admin-helper.js'

/*
 * The Account API (docs/api.md#account-api) over HTTP on the real database:
 * every route, its permission, its scope, and the rules a token cannot get
 * around.
 */

const logLines: string[] = []
const logStream = new Writable({ write (chunk: Buffer, _encoding, done) { logLines.push(...chunk.toString().split('\n').filter(Boolean)); done() } })
const app = await buildTestApp({ LOG_LEVEL: 'info' }, { logStream })
/** The credential cache on, as in production: revocations through the API must still take effect at once here. */
const cached = await buildTestApp({ AUTH_CACHE_TTL_MS: 30_000 })
afterAll(async () => {
  await app.close()
  await cached.close()
})

const unknownId = 'ffffffffffffffffffffffff'
const body = () => ({ user_id: 'u1', datafast_visitor_id: visitorId() })
const future = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString()

describe('websites', () => {
  it('GET lists the account\'s websites as W, and no other account\'s', async () => {
    const site = await createOwner(app)
    const sibling = await createTestWebsite(app, { accountId: site.accountId, cookieless: true })
    await createTestWebsite(app)
    const { websites } = dataOf(await adminCall(app, 'GET', '/websites', site.owner)) as { websites: Array<Record<string, unknown>> }
    expect(websites.map((website) => website.id)).toEqual([site.websiteId, sibling.websiteId])
    for (const website of websites) {
      expect(Object.keys(website)).toEqual(W_KEYS)
      expect(website.createdAt).toMatch(ISO)
    }
    expect(websites[1]).toMatchObject({ domain: 'example.com', cookieless: true, suspended: false })
  })

  it('GET with a token limited to some websites lists only those', async () => {
    const site = await createOwner(app)
    const sibling = await createTestWebsite(app, { accountId: site.accountId })
    const { token } = await createTestToken(app, { accountId: site.accountId, permissions: ['websites:read'], websiteIds: [sibling.websiteId] })
    const { websites } = dataOf(await adminCall(app, 'GET', '/websites', token)) as { websites: Array<{ id: string }> }
    expect(websites.map((website) => website.id)).toEqual([sibling.websiteId])
  })

  it('POST creates a website (201, domain in lowercase) that a key made through the API can identify on', async () => {
    const site = await createOwner(app)
    const { website } = dataOf(await adminCall(app, 'POST', '/websites', site.owner, { domain: 'Shop.Example.COM' }), 201) as { website: Record<string, unknown> }
    expect(Object.keys(website)).toEqual(W_KEYS)
    expect(website).toMatchObject({ domain: 'shop.example.com', cookieless: false, suspended: false })
    expect(await app.repositories.websites.findWebsite(website.id as string)).toMatchObject({ accountId: site.accountId, domain: 'shop.example.com' })
    const { key } = dataOf(await adminCall(app, 'POST', `/websites/${String(website.id)}/api-keys`, site.owner, { name: 'shop' }), 201) as { key: string }
    expectSuccess(await identify(app, { auth: key, body: body() }))
    const cookieless = dataOf(await adminCall(app, 'POST', '/websites', site.owner, { domain: 'quiet.example', cookieless: true }), 201)
    expect(cookieless.website).toMatchObject({ cookieless: true })
  })

  it('POST by a token limited to some websites: 403, nothing created', async () => {
    const site = await createOwner(app)
    const { token } = await createTestToken(app, { accountId: site.accountId, permissions: ['*'], websiteIds: [site.websiteId] })
    const message = expectError(await adminCall(app, 'POST', '/websites', token, { domain: 'new.example' }), 403)
    expect(message).toMatch(/limited to some websites/)
    expect(await app.repositories.websites.listWebsites(site.accountId)).toHaveLength(1)
  })

  it('POST refuses a bad domain, a missing one, a non-boolean cookieless and unknown fields, naming the field', async () => {
    const site = await createOwner(app)
    const cases: Array<[unknown, RegExp]> = [
      [{ domain: 'https://example.com' }, /^domain must be a host name/],
      [{ domain: 'exa mple.com' }, /^domain must be a host name/],
      [{ domain: '' }, /^domain must be a host name/],
      [{ domain: `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}` }, /^domain must be a host name/],
      [{ domain: 42 }, /^domain must be a host name/],
      [{}, /^domain is required/],
      [{ domain: 'example.com', cookieless: 'yes' }, /^cookieless must be true or false/],
      [{ domain: 'example.com', suspended: true }, /"suspended" is not allowed/],
      [[], /JSON object/]
    ]
    for (const [payload, message] of cases) {
      expect(expectError(await adminCall(app, 'POST', '/websites', site.owner, payload), 400), JSON.stringify(payload)).toMatch(message)
    }
    expect(await app.repositories.websites.listWebsites(site.accountId)).toHaveLength(1)
  })

  it('PATCH suspends (identify 403 at once), resumes, and changes cookieless and domain', async () => {
    const site = await createOwner(app)
    const path = `/websites/${site.websiteId}`
    const suspended = dataOf(await adminCall(app, 'PATCH', path, site.owner, { suspended: true }))
    expect(suspended.website).toMatchObject({ id: site.websiteId, suspended: true })
    expectError(await identify(app, { auth: site.key, body: body() }), 403)
    dataOf(await adminCall(app, 'PATCH', path, site.owner, { suspended: false }))
    expectSuccess(await identify(app, { auth: site.key, body: body() }))
    const changed = dataOf(await adminCall(app, 'PATCH', path, site.owner, { cookieless: true, domain: 'New.Example' }))
    expect(changed.website).toEqual({ id: site.websiteId, domain: 'new.example', cookieless: true, suspended: false, createdAt: expect.stringMatching(ISO) })
    expect((await identify(app, { auth: site.key, body: body() })).json().data.action).toBe('skipped')
  })

  it('PATCH refuses an empty body, unknown fields and bad values, and changes nothing', async () => {
    const site = await createOwner(app)
    const path = `/websites/${site.websiteId}`
    expect(expectError(await adminCall(app, 'PATCH', path, site.owner, {}), 400)).toMatch(/at least one of domain, cookieless, suspended/)
    expect(expectError(await adminCall(app, 'PATCH', path, site.owner, { suspended: 'true' }), 400)).toMatch(/^suspended must be true or false/)
    expect(expectError(await adminCall(app, 'PATCH', path, site.owner, { suspend: true }), 400)).toMatch(/"suspend" is not allowed/)
    expect(expectError(await adminCall(app, 'PATCH', path, site.owner, { domain: 'a..b' }), 400)).toMatch(/^domain must be a host name/)
    expect(await app.repositories.websites.findWebsite(site.websiteId)).toMatchObject({ domain: 'example.com', suspended: false, cookieless: false })
  })
})

describe('website keys', () => {
  it('POST creates a key shown once (201, K and the df_ key); the listing shows K and never the secret or its hash', async () => {
    const site = await createOwner(app)
    const created = dataOf(await adminCall(app, 'POST', `/websites/${site.websiteId}/api-keys`, site.owner, { name: ' backend ' }), 201)
    expect(Object.keys(created)).toEqual(['apiKey', 'key'])
    const key = created.key as string
    expect(key).toMatch(/^df_[A-Za-z0-9_-]{43}$/)
    const apiKey = created.apiKey as Record<string, unknown>
    expect(Object.keys(apiKey)).toEqual(K_KEYS)
    expect(apiKey).toMatchObject({ websiteId: site.websiteId, name: 'backend', displayPrefix: key.slice(0, 9), revokedAt: null })
    expectSuccess(await identify(app, { auth: key, body: body() }))

    const listing = await adminCall(app, 'GET', `/websites/${site.websiteId}/api-keys`, site.owner)
    const { apiKeys } = dataOf(listing) as { apiKeys: Array<Record<string, unknown>> }
    expect(apiKeys.map((item) => item.id)).toEqual([site.keyId, apiKey.id])
    expect(apiKeys[1]).toEqual(apiKey)
    for (const item of apiKeys) expect(Object.keys(item)).toEqual(K_KEYS)
    for (const secret of [key, site.key]) {
      expect(listing.body).not.toContain(secret)
      expect(listing.body).not.toContain(hashSecret(secret))
      expect(listing.body).not.toContain(secret.slice(9, 20))
    }
  })

  it('POST with {} makes a key without a name; no body or a bad name is a 400', async () => {
    const site = await createOwner(app)
    expect(expectError(await adminCall(app, 'POST', `/websites/${site.websiteId}/api-keys`, site.owner), 400)).toMatch(/JSON object/)
    expect(dataOf(await adminCall(app, 'POST', `/websites/${site.websiteId}/api-keys`, site.owner, {}), 201).apiKey).toMatchObject({ name: '' })
    for (const name of ['', '   ', 'x'.repeat(101), 'a\u0000b', 'a\ud800b', 7]) {
      expect(expectError(await adminCall(app, 'POST', `/websites/${site.websiteId}/api-keys`, site.owner, { name }), 400)).toMatch(/^name must be/)
    }
    expect(await app.repositories.credentials.listWebsiteKeys(site.websiteId)).toHaveLength(2)
  })

  it('DELETE revokes: K with revokedAt, identify 401, a second DELETE keeps the first revokedAt, the listing keeps the key', async () => {
    const site = await createOwner(app)
    const revoked = dataOf(await adminCall(app, 'DELETE', `/api-keys/${site.keyId}`, site.owner))
    const apiKey = revoked.apiKey as Record<string, unknown>
    expect(Object.keys(apiKey)).toEqual(K_KEYS)
    expect(apiKey.revokedAt).toMatch(ISO)
    expectError(await identify(app, { auth: site.key, body: body() }), 401)
    expect(dataOf(await adminCall(app, 'DELETE', `/api-keys/${site.keyId}`, site.owner)).apiKey).toEqual(apiKey)
    const { apiKeys } = dataOf(await adminCall(app, 'GET', `/websites/${site.websiteId}/api-keys`, site.owner)) as { apiKeys: unknown[] }
    expect(apiKeys).toEqual([apiKey])
  })
})

describe('account tokens', () => {
  it('POST creates a token shown once (201, T and the dft_ token) that works at once', async () => {
    const site = await createOwner(app)
    const expiresAt = future(30)
    const created = dataOf(await adminCall(app, 'POST', '/access-tokens', site.owner, {
      name: 'ci', permissions: ['identify:write', 'websites:read', 'identify:write'], websiteIds: [site.websiteId.toUpperCase()], expiresAt
    }), 201)
    expect(Object.keys(created)).toEqual(['accessToken', 'token'])
    const token = created.token as string
    expect(token).toMatch(/^dft_[A-Za-z0-9_-]{43}$/)
    const accessToken = created.accessToken as Record<string, unknown>
    expect(Object.keys(accessToken)).toEqual(T_KEYS)
    expect(accessToken).toMatchObject({
      name: 'ci', permissions: ['identify:write', 'websites:read'], websiteIds: [site.websiteId], displayPrefix: token.slice(0, 10), expiresAt, revokedAt: null
    })
    expectSuccess(await identify(app, { auth: token, websiteId: site.websiteId, body: body() }))
    expect(dataOf(await adminCall(app, 'GET', '/websites', token)).websites).toHaveLength(1)
  })

  it('a date without a time expires at its midnight UTC; null or no expiresAt never expires', async () => {
    const site = await createOwner(app)
    const day = dataOf(await adminCall(app, 'POST', '/access-tokens', site.owner, { permissions: ['websites:read'], expiresAt: '2099-12-31' }), 201)
    expect(day.accessToken).toMatchObject({ expiresAt: '2099-12-31T00:00:00.000Z' })
    const never = dataOf(await adminCall(app, 'POST', '/access-tokens', site.owner, { permissions: ['websites:read'], expiresAt: null }), 201)
    expect(never.accessToken).toMatchObject({ expiresAt: null, websiteIds: [], name: '' })
  })

  it('GET lists T of every token of the account, revoked ones included, never a secret or a hash', async () => {
    const site = await createOwner(app)
    const other = await createOwner(app)
    const made = dataOf(await adminCall(app, 'POST', '/access-tokens', site.owner, { permissions: ['websites:read'] }), 201)
    const made2 = dataOf(await adminCall(app, 'POST', '/access-tokens', site.owner, { permissions: ['api-keys:read'] }), 201)
    dataOf(await adminCall(app, 'DELETE', `/access-tokens/${(made2.accessToken as { id: string }).id}`, site.owner))
    const listing = await adminCall(app, 'GET', '/access-tokens', site.owner)
    const { accessTokens } = dataOf(listing) as { accessTokens: Array<Record<string, unknown>> }
    expect(accessTokens.map((token) => token.id)).toEqual([site.ownerId, (made.accessToken as { id: string }).id, (made2.accessToken as { id: string }).id])
    for (const token of accessTokens) expect(Object.keys(token)).toEqual(T_KEYS)
    expect(accessTokens[2]?.revokedAt).toMatch(ISO)
    for (const secret of [site.owner, made.token as string, made2.token as string, other.owner]) {
      expect(listing.body).not.toContain(secret)
      expect(listing.body).not.toContain(hashSecret(secret))
      expect(listing.body).not.toContain(secret.slice(10, 20))
    }
    expect(listing.body).not.toContain(other.ownerId)
  })

  it('POST refuses bad input with a 400 naming the field, and creates nothing', async () => {
    const site = await createOwner(app)
    const cases: Array<[unknown, RegExp]> = [
      [{ permissions: ['identify:wrte'] }, /^permission "identify:wrte" is unknown; known permissions: /],
      [{ permissions: [] }, /^permissions must name at least one permission/],
      [{}, /^permissions is required/],
      [{ permissions: 'identify:write' }, /^permissions must be a list/],
      [{ permissions: [1] }, /^permissions must be a list/],
      [{ permissions: ['*'], websiteIds: ['abc'] }, /^websiteIds must be a list/],
      [{ permissions: ['*'], websiteIds: site.websiteId }, /^websiteIds must be a list/],
      [{ permissions: ['*'], websiteIds: Array.from({ length: 101 }, (_, index) => index.toString(16).padStart(24, '0')) }, /^websiteIds must be a list of at most 100/],
      [{ permissions: ['*'], expiresAt: 'next week' }, /^expiresAt must be an ISO 8601 date/],
      [{ permissions: ['*'], expiresAt: '2030-02-30' }, /^expiresAt must be an ISO 8601 date/],
      [{ permissions: ['*'], expiresAt: '2099-01-01T12:00:00' }, /^expiresAt must be an ISO 8601 date/],
      [{ permissions: ['*'], expiresAt: '2099-13-01' }, /^expiresAt must be an ISO 8601 date/],
      [{ permissions: ['*'], expiresAt: '2099-01-01T24:00:00Z' }, /^expiresAt must be an ISO 8601 date/],
      [{ permissions: ['*'], expiresAt: '2099-01-01T12:00:00+25:00' }, /^expiresAt must be an ISO 8601 date/],
      [{ permissions: ['*'], expiresAt: 4102444800000 }, /^expiresAt must be an ISO 8601 date/],
      [{ permissions: ['*'], expiresAt: '2001-01-01T00:00:00Z' }, /^expiresAt must be in the future/],
      [{ permissions: ['*'], name: '' }, /^name must be/],
      [{ permissions: ['*'], expires_at: future(1) }, /"expires_at" is not allowed; the fields are name, permissions, websiteIds, expiresAt/]
    ]
    for (const [payload, message] of cases) {
      expect(expectError(await adminCall(app, 'POST', '/access-tokens', site.owner, payload), 400), JSON.stringify(payload)).toMatch(message)
    }
    expect(await app.repositories.credentials.listAccountTokens(site.accountId)).toHaveLength(1)
  })

  it('POST with a website of another account or an unknown one: 404, the same answer', async () => {
    const site = await createOwner(app)
    const stranger = await createTestWebsite(app)
    const foreign = expectError(await adminCall(app, 'POST', '/access-tokens', site.owner, { permissions: ['*'], websiteIds: [stranger.websiteId] }), 404)
    const unknown = expectError(await adminCall(app, 'POST', '/access-tokens', site.owner, { permissions: ['*'], websiteIds: [unknownId] }), 404)
    expect(foreign.replace(stranger.websiteId, unknownId)).toBe(unknown)
    expect(await app.repositories.credentials.listAccountTokens(site.accountId)).toHaveLength(1)
  })

  it('DELETE revokes another token (T with revokedAt, 401 at once) and a token may revoke itself', async () => {
    const site = await createOwner(app)
    const { id, token } = await createTestToken(app, { accountId: site.accountId, permissions: ['identify:write'] })
    const revoked = dataOf(await adminCall(app, 'DELETE', `/access-tokens/${id}`, site.owner))
    expect(Object.keys(revoked.accessToken as object)).toEqual(T_KEYS)
    expect(revoked.accessToken).toMatchObject({ id, revokedAt: expect.stringMatching(ISO) })
    expectError(await identify(app, { auth: token, websiteId: site.websiteId, body: body() }), 401)
    const self = dataOf(await adminCall(app, 'DELETE', `/access-tokens/${site.ownerId}`, site.owner))
    expect(self.accessToken).toMatchObject({ id: site.ownerId, revokedAt: expect.stringMatching(ISO) })
    expectError(await adminCall(app, 'GET', '/websites', site.owner), 401)
  })
})

describe('a token never creates a token wider than itself (403 naming what exceeds)', () => {
  it('each permission must be held by the creator; * grants all, and only * grants *', async () => {
    const site = await createOwner(app)
    const { token } = await createTestToken(app, { accountId: site.accountId, permissions: ['api-keys:write', 'identify:write'] })
    const wider = expectError(await adminCall(app, 'POST', '/access-tokens', token, { permissions: ['identify:write', 'websites:write'] }), 403)
    expect(wider).toBe('permission "websites:write" exceeds this token\'s own permissions')
    expect(expectError(await adminCall(app, 'POST', '/access-tokens', token, { permissions: ['*'] }), 403)).toMatch(/"\*" exceeds/)
    dataOf(await adminCall(app, 'POST', '/access-tokens', token, { permissions: ['identify:write', 'api-keys:write'] }), 201)
    dataOf(await adminCall(app, 'POST', '/access-tokens', site.owner, { permissions: ['*'] }), 201)
    expect(await app.repositories.credentials.listAccountTokens(site.accountId)).toHaveLength(4)
  })

  it('websiteIds must lie inside the creator\'s; a creator with a list cannot make a token for every website', async () => {
    const site = await createOwner(app)
    const sibling = await createTestWebsite(app, { accountId: site.accountId })
    const { token } = await createTestToken(app, { accountId: site.accountId, permissions: ['*'], websiteIds: [site.websiteId] })
    const outside = expectError(await adminCall(app, 'POST', '/access-tokens', token, { permissions: ['identify:write'], websiteIds: [site.websiteId, sibling.websiteId] }), 403)
    expect(outside).toBe(`website ${sibling.websiteId} is outside this token's websites`)
    // Outside the list is a 403 whether the website exists or not: a limited token learns nothing of other ids.
    expect(expectError(await adminCall(app, 'POST', '/access-tokens', token, { permissions: ['identify:write'], websiteIds: [unknownId] }), 403)).toMatch(/outside/)
    for (const websiteIds of [undefined, []]) {
      const all = expectError(await adminCall(app, 'POST', '/access-tokens', token, { permissions: ['identify:write'], websiteIds }), 403)
      expect(all).toMatch(/limited to some websites, so websiteIds must list some of them/)
    }
    const inside = dataOf(await adminCall(app, 'POST', '/access-tokens', token, { permissions: ['identify:write'], websiteIds: [site.websiteId] }), 201)
    expect(inside.accessToken).toMatchObject({ websiteIds: [site.websiteId] })
  })

  it('expiresAt no later than the creator\'s; a creator that expires cannot make a token that never does', async () => {
    const site = await createOwner(app)
    const limit = new Date(Date.now() + 7 * 86_400_000)
    const { token } = await createTestToken(app, { accountId: site.accountId, permissions: ['*'], expiresAt: limit })
    for (const expiresAt of [undefined, null]) {
      const never = expectError(await adminCall(app, 'POST', '/access-tokens', token, { permissions: ['identify:write'], expiresAt }), 403)
      expect(never).toBe(`This token expires at ${limit.toISOString()}, so expiresAt is required and no later: a token that never expires exceeds it`)
    }
    const later = expectError(await adminCall(app, 'POST', '/access-tokens', token, { permissions: ['identify:write'], expiresAt: new Date(limit.getTime() + 1000).toISOString() }), 403)
    expect(later).toBe(`expiresAt exceeds this token's own expiry, ${limit.toISOString()}`)
    dataOf(await adminCall(app, 'POST', '/access-tokens', token, { permissions: ['identify:write'], expiresAt: limit.toISOString() }), 201)
    dataOf(await adminCall(app, 'POST', '/access-tokens', token, { permissions: ['identify:write'], expiresAt: future(1) }), 201)
  })
})

describe('scope: another account, or outside the token\'s websites, is a 404 like an unknown id', () => {
  it('every route with an id, for a foreign id, an id outside the allow-list and an unknown id', async () => {
    const site = await createOwner(app)
    const sibling = await createTestWebsite(app, { accountId: site.accountId })
    const { id: siblingTokenId } = await createTestToken(app, { accountId: site.accountId, permissions: ['*'] })
    const stranger = await createOwner(app)
    const { token: limited } = await createTestToken(app, { accountId: site.accountId, permissions: ['*'], websiteIds: [site.websiteId] })
    const routes = (ids: { website: string, key: string, token: string }) => [
      ['PATCH', `/websites/${ids.website}`, { suspended: true }],
      ['GET', `/websites/${ids.website}/api-keys`, undefined],
      ['POST', `/websites/${ids.website}/api-keys`, {}],
      ['DELETE', `/api-keys/${ids.key}`, undefined],
      ['DELETE', `/access-tokens/${ids.token}`, undefined]
    ] as const
    const cases = [
      { token: site.owner, ids: { website: stranger.websiteId, key: stranger.keyId, token: stranger.ownerId }, unknown: { website: unknownId, key: unknownId, token: unknownId } },
      { token: limited, ids: { website: sibling.websiteId, key: sibling.keyId, token: siblingTokenId }, unknown: { website: unknownId, key: unknownId, token: unknownId } }
    ]
    for (const { token, ids, unknown } of cases) {
      const unseen = routes(ids)
      const missing = routes(unknown)
      for (const [index, [method, path, payload]] of unseen.entries()) {
        const message = expectError(await adminCall(app, method, path, token, payload), 404)
        const [, unknownPath, unknownPayload] = missing[index]!
        const unknownMessage = expectError(await adminCall(app, method, unknownPath, token, unknownPayload), 404)
        expect(message.replace(/[0-9a-f]{24}/, unknownId), `${method} ${path}`).toBe(unknownMessage)
      }
    }
    // Nothing changed on the other side.
    expect(await app.repositories.websites.findWebsite(stranger.websiteId)).toMatchObject({ suspended: false })
    expect(await app.repositories.websites.findWebsite(sibling.websiteId)).toMatchObject({ suspended: false })
    expectSuccess(await identify(app, { auth: stranger.key, body: body() }))
    expectSuccess(await identify(app, { auth: sibling.key, body: body() }))
    expect(await app.repositories.credentials.listWebsiteKeys(stranger.websiteId)).toHaveLength(1)
    expect((await app.repositories.credentials.findAccountTokenById(siblingTokenId))?.revokedAt).toBeNull()
  })

  it('a limited token lists only the tokens limited to some of its websites, itself included', async () => {
    const site = await createOwner(app)
    const sibling = await createTestWebsite(app, { accountId: site.accountId })
    const limited = await createTestToken(app, { accountId: site.accountId, permissions: ['*'], websiteIds: [site.websiteId] })
    const narrower = await createTestToken(app, { accountId: site.accountId, permissions: ['identify:write'], websiteIds: [site.websiteId] })
    await createTestToken(app, { accountId: site.accountId, permissions: ['identify:write'], websiteIds: [site.websiteId, sibling.websiteId] })
    const { accessTokens } = dataOf(await adminCall(app, 'GET', '/access-tokens', limited.token)) as { accessTokens: Array<{ id: string }> }
    expect(accessTokens.map((token) => token.id)).toEqual([limited.id, narrower.id])
    dataOf(await adminCall(app, 'DELETE', `/access-tokens/${narrower.id}`, limited.token))
  })

  it('a malformed id is a 400 naming id, on every route with an id', async () => {
    const site = await createOwner(app)
    for (const bad of ['123', 'g'.repeat(24), 'f'.repeat(25), '%24ne', '0x' + 'f'.repeat(22)]) {
      for (const [method, path] of [['PATCH', `/websites/${bad}`], ['GET', `/websites/${bad}/api-keys`], ['POST', `/websites/${bad}/api-keys`],
        ['DELETE', `/api-keys/${bad}`], ['DELETE', `/access-tokens/${bad}`]] as const) {
        const message = expectError(await adminCall(app, method, path, site.owner, method === 'PATCH' ? { suspended: true } : undefined), 400)
        expect(message, `${method} ${path}`).toBe('id must be 24 hexadecimal characters')
      }
    }
  })

  it('an id in uppercase hex names the same thing', async () => {
    const site = await createOwner(app)
    const { apiKeys } = dataOf(await adminCall(app, 'GET', `/websites/${site.websiteId.toUpperCase()}/api-keys`, site.owner)) as { apiKeys: Array<{ id: string }> }
    expect(apiKeys.map((key) => key.id)).toEqual([site.keyId])
  })
})

/** Every route, the permission it needs, and a call that would succeed with it. */
const routes = (site: { websiteId: string, keyId: string, ownerId: string }) => [
  { permission: 'websites:read', method: 'GET', path: '/websites', payload: undefined },
  { permission: 'websites:write', method: 'POST', path: '/websites', payload: { domain: 'new.example' } },
  { permission: 'websites:write', method: 'PATCH', path: `/websites/${site.websiteId}`, payload: { suspended: true } },
  { permission: 'api-keys:read', method: 'GET', path: `/websites/${site.websiteId}/api-keys`, payload: undefined },
  { permission: 'api-keys:write', method: 'POST', path: `/websites/${site.websiteId}/api-keys`, payload: {} },
  { permission: 'api-keys:write', method: 'DELETE', path: `/api-keys/${site.keyId}`, payload: undefined },
  { permission: 'api-keys:read', method: 'GET', path: '/access-tokens', payload: undefined },
  { permission: 'api-keys:write', method: 'POST', path: '/access-tokens', payload: { permissions: ['api-keys:write'] } },
  { permission: 'api-keys:write', method: 'DELETE', path: `/access-tokens/${site.ownerId}`, payload: undefined }
] as const

describe('permissions', () => {
  it('each route answers 403 naming its permission to a token with every other one, and works with it', async () => {
    const site = await createOwner(app)
    const all = ['websites:read', 'websites:write', 'api-keys:read', 'api-keys:write', 'identify:write', 'analytics:read']
    for (const route of routes(site)) {
      const { token } = await createTestToken(app, { accountId: site.accountId, permissions: all.filter((permission) => permission !== route.permission) })
      const message = expectError(await adminCall(app, route.method, route.path, token, route.payload), 403)
      expect(message, `${route.method} ${route.path}`).toBe(`This token lacks the ${route.permission} permission`)
    }
    // The permission alone is enough (the last route revokes the owner token, so it runs last).
    for (const route of routes(site)) {
      const { token } = await createTestToken(app, { accountId: site.accountId, permissions: [route.permission] })
      const response = await adminCall(app, route.method, route.path, token, route.payload)
      expect([200, 201], `${route.method} ${route.path}: ${response.body}`).toContain(response.statusCode)
    }
  })

  it('a df_ website key gets 403 on every route, and no credential gets 401', async () => {
    const site = await createOwner(app)
    for (const route of routes(site)) {
      expect(expectError(await adminCall(app, route.method, route.path, site.key, route.payload), 403)).toMatch(/dft_ account token, not a df_ website key/)
      expectError(await adminCall(app, route.method, route.path, undefined, route.payload), 401)
    }
    expect(await app.repositories.websites.findWebsite(site.websiteId)).toMatchObject({ suspended: false })
    expect((await app.repositories.credentials.findAccountTokenById(site.ownerId))?.revokedAt).toBeNull()
  })
})

describe('at most MAX_TOKENS_PER_ACCOUNT (20) active tokens per account', () => {
  it('the 21st is a 409; revoked and expired tokens do not count, and a revocation frees a place', async () => {
    const site = await createOwner(app)
    await createTestToken(app, { accountId: site.accountId, expiresAt: new Date(Date.now() - 1000) })
    const { id: revokedId } = await createTestToken(app, { accountId: site.accountId })
    await app.repositories.credentials.revokeAccountToken(revokedId)
    const made: string[] = []
    for (let index = 1; index < 20; index++) {
      made.push((dataOf(await adminCall(app, 'POST', '/access-tokens', site.owner, { permissions: ['identify:write'] }), 201).accessToken as { id: string }).id)
    }
    const message = expectError(await adminCall(app, 'POST', '/access-tokens', site.owner, { permissions: ['identify:write'] }), 409)
    expect(message).toBe('The account already has 20 active tokens, the most MAX_TOKENS_PER_ACCOUNT allows: revoke one first')
    expect(await app.repositories.credentials.countActiveAccountTokens(site.accountId, new Date())).toBe(20)
    // Another account is not affected.
    const other = await createOwner(app)
    dataOf(await adminCall(app, 'POST', '/access-tokens', other.owner, { permissions: ['identify:write'] }), 201)
    dataOf(await adminCall(app, 'DELETE', `/access-tokens/${made[0]!}`, site.owner))
    dataOf(await adminCall(app, 'POST', '/access-tokens', site.owner, { permissions: ['identify:write'] }), 201)
    expectError(await adminCall(app, 'POST', '/access-tokens', site.owner, { permissions: ['identify:write'] }), 409)
  })

  it('concurrent creates never leave more than the cap, and the refused ones leave nothing behind', async () => {
    const site = await createOwner(app)
    for (let index = 1; index < 17; index++) await createTestToken(app, { accountId: site.accountId })
    const responses = await Promise.all(Array.from({ length: 12 }, async () =>
      await adminCall(app, 'POST', '/access-tokens', site.owner, { permissions: ['identify:write'] })))
    const created = responses.filter((response) => response.statusCode === 201)
    for (const response of responses) expect([201, 409], response.body).toContain(response.statusCode)
    expect(created.length).toBeLessThanOrEqual(3)
    const stored = await app.repositories.credentials.listAccountTokens(site.accountId)
    expect(stored).toHaveLength(17 + created.length)
    expect(await app.repositories.credentials.countActiveAccountTokens(site.accountId, new Date())).toBeLessThanOrEqual(20)
  })
})

describe('revocation and suspension through the API take effect at once on the same instance, cache on', () => {
  it('a revoked df_ key, a suspended website and a revoked dft_ token are refused on the next call', async () => {
    const site = await createOwner(cached)
    const { id, token } = await createTestToken(cached, { accountId: site.accountId, permissions: ['identify:write'] })
    const sibling = await createTestWebsite(cached, { accountId: site.accountId })
    // Each credential and website is cached by a first successful call.
    expectSuccess(await identify(cached, { auth: site.key, body: body() }))
    expectSuccess(await identify(cached, { auth: token, websiteId: site.websiteId, body: body() }))
    expectSuccess(await identify(cached, { auth: sibling.key, body: body() }))

    dataOf(await adminCall(cached, 'DELETE', `/api-keys/${site.keyId}`, site.owner))
    expectError(await identify(cached, { auth: site.key, body: body() }), 401)
    dataOf(await adminCall(cached, 'DELETE', `/access-tokens/${id}`, site.owner))
    expectError(await identify(cached, { auth: token, websiteId: site.websiteId, body: body() }), 401)
    dataOf(await adminCall(cached, 'PATCH', `/websites/${sibling.websiteId}`, site.owner, { suspended: true }))
    expectError(await identify(cached, { auth: sibling.key, body: body() }), 403)
    dataOf(await adminCall(cached, 'PATCH', `/websites/${sibling.websiteId}`, site.owner, { suspended: false }))
    expectSuccess(await identify(cached, { auth: sibling.key, body: body() }))
  })

  it('a token that revoked itself is refused on its next call', async () => {
    const site = await createOwner(cached)
    dataOf(await adminCall(cached, 'GET', '/websites', site.owner))
    dataOf(await adminCall(cached, 'DELETE', `/access-tokens/${site.ownerId}`, site.owner))
    expectError(await adminCall(cached, 'GET', '/websites', site.owner), 401)
  })
})

describe('every admin call is logged and counted', () => {
  it('one line with the token id, the action and the id acted on, never a secret', async () => {
    const site = await createOwner(app)
    const created = dataOf(await adminCall(app, 'POST', `/websites/${site.websiteId}/api-keys`, site.owner, { name: 'logged' }), 201)
    const newKeyId = (created.apiKey as { id: string }).id
    dataOf(await adminCall(app, 'DELETE', `/api-keys/${newKeyId}`, site.owner))
    const made = dataOf(await adminCall(app, 'POST', '/access-tokens', site.owner, { permissions: ['identify:write'] }), 201)
    expectError(await adminCall(app, 'DELETE', `/api-keys/${unknownId}`, site.owner), 404)
    await new Promise((resolve) => setImmediate(resolve))
    const lines = logLines.map((line) => JSON.parse(line) as { msg: string, admin?: Record<string, unknown> })
      .filter((line) => line.msg === 'admin call' && line.admin?.credentialId === site.ownerId)
    expect(lines.map((line) => line.admin)).toEqual([
      { action: 'api-keys.create', accountId: site.accountId, credentialId: site.ownerId, targetId: newKeyId, status: 201 },
      { action: 'api-keys.revoke', accountId: site.accountId, credentialId: site.ownerId, targetId: newKeyId, status: 200 },
      { action: 'access-tokens.create', accountId: site.accountId, credentialId: site.ownerId, targetId: (made.accessToken as { id: string }).id, status: 201 },
      { action: 'api-keys.revoke', accountId: site.accountId, credentialId: site.ownerId, targetId: unknownId, status: 404 }
    ])
    const everything = logLines.join('\n')
    for (const secret of [site.owner, site.key, created.key as string, made.token as string]) {
      expect(everything).not.toContain(secret)
      expect(everything).not.toContain(hashSecret(secret))
    }
  })

  it('an unauthenticated call is logged without a credential or a malformed id', async () => {
    await adminCall(app, 'DELETE', '/api-keys/not-an-id-MARKER', undefined)
    await new Promise((resolve) => setImmediate(resolve))
    const line = logLines.map((text) => JSON.parse(text) as { msg: string, admin?: Record<string, unknown> })
      .filter((entry) => entry.msg === 'admin call').at(-1)
    expect(line?.admin).toEqual({ action: 'api-keys.revoke', status: 401 })
    expect(logLines.join('\n')).not.toContain('MARKER')
  })

  it('/metrics counts admin calls by action and status', async () => {
    const site = await createOwner(app)
    const before = await app.inject('/metrics')
    const count = (text: string, labels: string) => Number(new RegExp(`^admin_calls_total\\{${labels}\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)
    const created = 'action="access-tokens.create",status_code="201"'
    const refused = 'action="websites.list",status_code="403"'
    dataOf(await adminCall(app, 'POST', '/access-tokens', site.owner, { permissions: ['identify:write'] }), 201)
    expectError(await adminCall(app, 'GET', '/websites', site.key), 403)
    const after = await app.inject('/metrics')
    expect(count(after.body, created)).toBe(count(before.body, created) + 1)
    expect(count(after.body, refused)).toBe(count(before.body, refused) + 1)
  })
})
