import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { LISTED_VISITORS_MAX } from '../src/storage/repositories/profiles.js'
import { buildTestApp, createTestToken, createTestWebsite, expectError, identify, visitorId } from './helper.js'
import { identified, profileOf, profilesCall, walkProfiles } from './profiles-helper.js'

/*
 * The profile routes over HTTP on the real database (docs/api.md#profiles):
 * every route and answer, the P shape, the parameters' rules, the
 * authentication matrix of each route, erasure and pagination.
 */

const lines: string[] = []
const app = await buildTestApp({ LOG_LEVEL: 'info', NODE_ENV: 'production' }, { logStream: { write (line: string) { lines.push(line) } } })
afterAll(async () => { await app.close() })

let userCounter = 0
const newUserId = (): string => `profile_user_${String(++userCounter)}_${randomBytes(3).toString('hex')}`
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

describe('reading a profile', () => {
  it('answers the same P by id, by user_id and by each visitor: lowercase visitor ids in the order they were linked, ISO times', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const visitors = [visitorId(), visitorId(), visitorId()]
    const { profileId } = await identified(app, site, userId, visitors[0]!.toUpperCase(), { name: 'Ada', plan: { tier: 'pro' } })
    await identified(app, site, userId, visitors[1]!)
    await identified(app, site, userId, visitors[2]!, { name: 'Ada L' })

    const byId = profileOf(await profilesCall(app, { path: `/profiles/${profileId}`, auth: site.key }))
    expect(byId).toEqual({
      id: profileId,
      websiteId: site.websiteId,
      userId,
      metadata: { name: 'Ada L', plan: { tier: 'pro' } },
      visitorIds: visitors,
      createdAt: expect.stringMatching(ISO),
      updatedAt: expect.stringMatching(ISO)
    })
    expect(byId.updatedAt > byId.createdAt).toBe(true)
    expect(profileOf(await profilesCall(app, { path: '/profiles', auth: site.key, query: { user_id: userId } }))).toEqual(byId)
    for (const visitor of visitors) {
      expect(profileOf(await profilesCall(app, { path: `/visitors/${visitor.toUpperCase()}/profile`, auth: site.key }))).toEqual(byId)
    }
    // An id in upper case names the same profile.
    expect(profileOf(await profilesCall(app, { path: `/profiles/${profileId.toUpperCase()}`, auth: site.key }))).toEqual(byId)
  })

  it('is the shape the CLI prints: the repository\'s profile as JSON', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    await identified(app, site, userId, visitorId(), { seats: 3, tags: ['a', 'b'], gone: null })
    const stored = await app.repositories.profiles.findProfile(site.websiteId, userId)
    expect(profileOf(await profilesCall(app, { path: '/profiles', auth: site.key, query: { user_id: userId } })))
      .toEqual(JSON.parse(JSON.stringify(stored)))
  })

  it('answers 404 for a profile, a user or a visitor the website does not have', async () => {
    const site = await createTestWebsite(app)
    const other = await createTestWebsite(app)
    const userId = newUserId()
    const visitor = visitorId()
    const { profileId } = await identified(app, other, userId, visitor)
    // Another website's profile, user and visitor are unknown here.
    expect(expectError(await profilesCall(app, { path: `/profiles/${profileId}`, auth: site.key }), 404)).toMatch(/no profile with this id/)
    expect(expectError(await profilesCall(app, { path: '/profiles', auth: site.key, query: { user_id: userId } }), 404)).toMatch(/no profile for this user_id/)
    expect(expectError(await profilesCall(app, { path: `/visitors/${visitor}/profile`, auth: site.key }), 404)).toMatch(/linked to no profile/)
    expectError(await profilesCall(app, { path: `/profiles/${randomBytes(12).toString('hex')}`, auth: site.key }), 404)
  })

  it('lists every visitor once the profile no longer lists them itself: past the listed maximum, and after a visitor left', async () => {
    const site = await createTestWebsite(app)
    const many = newUserId()
    const visitors = Array.from({ length: LISTED_VISITORS_MAX + 3 }, () => visitorId())
    for (const visitor of visitors) await identified(app, site, many, visitor)
    const manyProfile = profileOf(await profilesCall(app, { path: '/profiles', auth: site.key, query: { user_id: many } }))
    expect(manyProfile.visitorIds).toEqual(visitors)

    const [left, stays] = [visitorId(), visitorId()]
    const first = newUserId()
    await identified(app, site, first, left)
    await identified(app, site, first, stays)
    const second = newUserId()
    await identified(app, site, second, left)
    expect(profileOf(await profilesCall(app, { path: '/profiles', auth: site.key, query: { user_id: first } })).visitorIds).toEqual([stays])
    expect(profileOf(await profilesCall(app, { path: `/visitors/${left}/profile`, auth: site.key })).userId).toBe(second)
    // The listing shows the same, reading the links of both kinds of profile in one page.
    const listed = await walkProfiles(app, site.key)
    expect(listed.find((profile) => profile.userId === first)?.visitorIds).toEqual([stays])
    expect(listed.find((profile) => profile.userId === many)?.visitorIds).toEqual(visitors)
  })
})

describe('listing profiles', () => {
  it('pages through every profile of the website in id order, exactly once, with limit and nextCursor', async () => {
    const site = await createTestWebsite(app)
    const other = await createTestWebsite(app)
    const ids = new Set<string>()
    for (let index = 0; index < 7; index++) ids.add((await identified(app, site, newUserId(), visitorId())).profileId)
    await identified(app, other, newUserId(), visitorId())

    const seen = await walkProfiles(app, site.key, { limit: 3 })
    expect(seen.map((profile) => profile.id)).toEqual([...ids].sort())
    // The default page holds them all, and the last page says so.
    const whole = await profilesCall(app, { path: '/profiles', auth: site.key })
    expect(whole.json().data.profiles).toHaveLength(7)
    expect(whole.json().data.nextCursor).toBeNull()
    const exact = await profilesCall(app, { path: '/profiles', auth: site.key, query: { limit: '7' } })
    expect(exact.json().data.nextCursor).toBeNull()
    const short = await profilesCall(app, { path: '/profiles', auth: site.key, query: { limit: '6' } })
    expect(short.json().data.nextCursor).toEqual(expect.any(String))
  })

  it('answers an empty page for a website without profiles, a cookieless one included', async () => {
    const cookieless = await createTestWebsite(app, { cookieless: true })
    await identify(app, { auth: cookieless.key, body: { user_id: 'u', datafast_visitor_id: visitorId() } })
    const response = await profilesCall(app, { path: '/profiles', auth: cookieless.key })
    expect(response.json()).toEqual({ status: 'success', data: { profiles: [], nextCursor: null } })
    expectError(await profilesCall(app, { path: '/profiles', auth: cookieless.key, query: { user_id: 'u' } }), 404)
  })

  it('visits every profile present for the whole walk exactly once while others are created and erased', async () => {
    const site = await createTestWebsite(app)
    const stable = new Set<string>()
    for (let index = 0; index < 30; index++) stable.add((await identified(app, site, newUserId(), visitorId())).profileId)
    const transient: string[] = []
    for (let index = 0; index < 10; index++) transient.push((await identified(app, site, newUserId(), visitorId())).profileId)

    let step = 0
    const seen = await walkProfiles(app, site.key, {
      limit: 4,
      // Between pages, concurrently with the next request: new profiles, and erasures of the transient ones.
      between: async () => {
        step++
        await Promise.all([
          identified(app, site, newUserId(), visitorId()),
          identified(app, site, newUserId(), visitorId()),
          transient.length > 0 ? profilesCall(app, { method: 'DELETE', path: `/profiles/${transient.pop()!}`, auth: site.key }) : undefined
        ])
      }
    })
    expect(step).toBeGreaterThan(5)
    const ids = seen.map((profile) => profile.id)
    expect(new Set(ids).size, 'a profile was seen twice').toBe(ids.length)
    for (const id of stable) expect(ids, `profile ${id} present for the whole walk was missed`).toContain(id)
    expect([...ids].sort()).toEqual(ids)
  })
})

describe('parameters: a malformed one is a 400 that names it', () => {
  const cases: Array<[string, string, Record<string, string>, RegExp]> = [
    ['profileId too short', '/profiles/abc', {}, /^profileId must be 24 hexadecimal characters$/],
    ['profileId not hex', `/profiles/${'z'.repeat(24)}`, {}, /^profileId must be/],
    ['visitorId not a UUID', '/visitors/not-a-uuid/profile', {}, /^visitorId must be a UUID/],
    ['limit 0', '/profiles', { limit: '0' }, /^limit must be a whole number from 1 to 250$/],
    ['limit 251', '/profiles', { limit: '251' }, /^limit must be/],
    ['limit not a number', '/profiles', { limit: '10abc' }, /^limit must be/],
    ['limit negative', '/profiles', { limit: '-1' }, /^limit must be/],
    ['limit fractional', '/profiles', { limit: '1.5' }, /^limit must be/],
    ['cursor malformed', '/profiles', { cursor: 'not a cursor' }, /^cursor must be the nextCursor/],
    ['cursor of the wrong length', '/profiles', { cursor: 'Zl8LPE0uGgASNFZ' }, /^cursor must be/],
    ['user_id blank', '/profiles', { user_id: '   ' }, /^user_id must be a string of 1 to 255 characters/],
    ['user_id empty', '/profiles', { user_id: '' }, /^user_id must be/],
    ['user_id too long', '/profiles', { user_id: 'x'.repeat(256) }, /^user_id must be/],
    ['limit beside user_id', '/profiles', { user_id: 'u', limit: '0' }, /^limit must be/],
    ['websiteId malformed', '/profiles', { websiteId: 'nope' }, /^websiteId must be 24 hexadecimal characters$/]
  ]
  it.each(cases)('%s', async (_name, path, query, message) => {
    const site = await createTestWebsite(app)
    expect(expectError(await profilesCall(app, { path, auth: site.key, query }), 400)).toMatch(message)
  })

  it('a repeated limit or cursor, and a malformed id to erase', async () => {
    const site = await createTestWebsite(app)
    const repeated = await app.inject({ url: '/api/v1/profiles?limit=1&limit=2', headers: { authorization: `Bearer ${site.key}` } })
    expect(expectError(repeated, 400)).toMatch(/^limit must be/)
    expect(expectError(await profilesCall(app, { method: 'DELETE', path: '/profiles/123', auth: site.key }), 400)).toMatch(/^profileId must be/)
  })

  it('with user_id, a well-formed limit and cursor have no effect', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    await identified(app, site, userId, visitorId())
    const alone = profileOf(await profilesCall(app, { path: '/profiles', auth: site.key, query: { user_id: userId } }))
    expect(profileOf(await profilesCall(app, { path: '/profiles', auth: site.key, query: { user_id: userId, limit: '1', cursor: '________________' } }))).toEqual(alone)
  })

  it('accepts 250 and a cursor that points past every profile', async () => {
    const site = await createTestWebsite(app)
    await identified(app, site, newUserId(), visitorId())
    expect((await profilesCall(app, { path: '/profiles', auth: site.key, query: { limit: '250' } })).statusCode).toBe(200)
    const last = await profilesCall(app, { path: '/profiles', auth: site.key, query: { cursor: '________________' } })
    expect(last.json()).toEqual({ status: 'success', data: { profiles: [], nextCursor: null } })
  })

  it('checks the credential before the parameters: a stranger gets 401 for a malformed id', async () => {
    expectError(await profilesCall(app, { path: '/profiles/abc' }), 401)
  })
})

describe('authentication and permissions of each route', () => {
  interface Route { method?: 'DELETE', path: string, query: Record<string, string> }
  const routes = async (site: Awaited<ReturnType<typeof createTestWebsite>>): Promise<{ reads: Route[], erase: Route }> => {
    const userId = newUserId()
    const visitor = visitorId()
    const { profileId } = await identified(app, site, userId, visitor, { name: 'Ada' })
    return {
      reads: [
        { path: `/profiles/${profileId}`, query: {} },
        { path: '/profiles', query: { user_id: userId } },
        { path: '/profiles', query: {} },
        { path: `/visitors/${visitor}/profile`, query: {} }
      ],
      erase: { method: 'DELETE', path: `/profiles/${profileId}`, query: {} }
    }
  }

  it('a df_ key reads and erases on its own website only; websiteId of another website is a 403', async () => {
    const site = await createTestWebsite(app)
    const other = await createTestWebsite(app)
    const { reads, erase } = await routes(site)
    for (const route of [...reads, erase]) {
      expect(expectError(await profilesCall(app, { ...route, auth: site.key, query: { ...route.query, websiteId: other.websiteId } }), 403))
        .toMatch(/another website/)
      expectError(await profilesCall(app, { ...route, query: route.query }), 401)
      expectError(await profilesCall(app, { ...route, auth: `df_${randomBytes(32).toString('base64url')}`, query: route.query }), 401)
    }
    for (const route of reads) expect((await profilesCall(app, { ...route, auth: site.key, query: { ...route.query, websiteId: site.websiteId } })).statusCode).toBe(200)
    expect((await profilesCall(app, { ...erase, auth: site.key })).statusCode).toBe(200)
  })

  it('a dft_ token reads with identify:read, analytics:read or *, and not with identify:write or identify:delete', async () => {
    const site = await createTestWebsite(app)
    const { reads } = await routes(site)
    const allowed = await Promise.all(['identify:read', 'analytics:read', '*'].map(async (permission) => await createTestToken(app, { accountId: site.accountId, permissions: [permission] })))
    const refused = await Promise.all([['identify:write'], ['identify:delete'], ['goals:read']].map(async (permissions) => await createTestToken(app, { accountId: site.accountId, permissions })))
    for (const route of reads) {
      const query = { ...route.query, websiteId: site.websiteId }
      for (const { token } of allowed) expect((await profilesCall(app, { ...route, auth: token, query })).statusCode, route.path).toBe(200)
      for (const { token } of refused) {
        expect(expectError(await profilesCall(app, { ...route, auth: token, query }), 403)).toMatch(/lacks the identify:read or analytics:read permission/)
      }
    }
  })

  it('a dft_ token erases with identify:delete or *, and not with a read or write permission', async () => {
    const site = await createTestWebsite(app)
    for (const permissions of [['identify:read', 'analytics:read', 'identify:write']]) {
      const { erase } = await routes(site)
      const { token } = await createTestToken(app, { accountId: site.accountId, permissions })
      expect(expectError(await profilesCall(app, { ...erase, auth: token, query: { websiteId: site.websiteId } }), 403)).toMatch(/lacks the identify:delete permission/)
    }
    for (const permission of ['identify:delete', '*']) {
      const { erase } = await routes(site)
      const { token } = await createTestToken(app, { accountId: site.accountId, permissions: [permission] })
      expect((await profilesCall(app, { ...erase, auth: token, query: { websiteId: site.websiteId } })).statusCode).toBe(200)
    }
  })

  it('a dft_ token needs websiteId (400), of its own account (404), inside its allow-list (403)', async () => {
    const site = await createTestWebsite(app)
    const sibling = await createTestWebsite(app, { accountId: site.accountId })
    const stranger = await createTestWebsite(app)
    const { reads, erase } = await routes(site)
    const { token } = await createTestToken(app, { accountId: site.accountId, permissions: ['*'], websiteIds: [sibling.websiteId] })
    const { token: everywhere } = await createTestToken(app, { accountId: site.accountId, permissions: ['*'] })
    for (const route of [...reads, erase]) {
      expect(expectError(await profilesCall(app, { ...route, auth: everywhere, query: route.query }), 400)).toMatch(/websiteId is required/)
      expect(expectError(await profilesCall(app, { ...route, auth: everywhere, query: { ...route.query, websiteId: stranger.websiteId } }), 404)).toBe('Website not found')
      expect(expectError(await profilesCall(app, { ...route, auth: token, query: { ...route.query, websiteId: site.websiteId } }), 403)).toMatch(/not allowed to act on this website/)
    }
    // The sibling website, inside the list, simply has no such profile.
    expectError(await profilesCall(app, { ...reads[0]!, auth: token, query: { websiteId: sibling.websiteId } }), 404)
  })

  it('a suspended website still answers reads and erasures, while identify is refused', async () => {
    const site = await createTestWebsite(app)
    const { reads, erase } = await routes(site)
    await app.repositories.websites.setSuspended(site.websiteId, true)
    expectError(await identify(app, { auth: site.key, body: { user_id: 'u', datafast_visitor_id: visitorId() } }), 403)
    for (const route of reads) expect((await profilesCall(app, { ...route, auth: site.key })).statusCode, route.path).toBe(200)
    expect((await profilesCall(app, { ...erase, auth: site.key })).statusCode).toBe(200)
  })
})

describe('erasure', () => {
  it('erases the profile and every visitor link: every read answers 404, and identify of the user creates a new profile', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const visitors = [visitorId(), visitorId(), visitorId()]
    const { profileId } = await identified(app, site, userId, visitors[0]!, { email: 'ada@example.com' })
    for (const visitor of visitors.slice(1)) await identified(app, site, userId, visitor)
    const kept = await identified(app, site, newUserId(), visitorId())
    lines.length = 0

    const erased = await profilesCall(app, { method: 'DELETE', path: `/profiles/${profileId}`, auth: site.key })
    expect(erased.statusCode, erased.body).toBe(200)
    expect(erased.json()).toEqual({ status: 'success', data: { profileId, erased: true, visitorLinks: 3 } })

    expectError(await profilesCall(app, { path: `/profiles/${profileId}`, auth: site.key }), 404)
    expectError(await profilesCall(app, { path: '/profiles', auth: site.key, query: { user_id: userId } }), 404)
    for (const visitor of visitors) expectError(await profilesCall(app, { path: `/visitors/${visitor}/profile`, auth: site.key }), 404)
    expect((await walkProfiles(app, site.key)).map((profile) => profile.id)).toEqual([kept.profileId])
    // Nothing of it is left in the database: no document of any collection holds the user id, a visitor id or the metadata.
    const collections = await app.mongo.db.listCollections({}, { nameOnly: true }).toArray()
    const stored = JSON.stringify(await Promise.all(collections.map(async ({ name }) => await app.mongo.db.collection(name).find({}).toArray())))
    for (const value of [userId, ...visitors, 'ada@example.com']) expect(stored).not.toContain(value)

    const again = await identified(app, site, userId, visitors[0]!)
    expect(again).toMatchObject({ profileId, action: 'created' })
    const fresh = profileOf(await profilesCall(app, { path: `/profiles/${profileId}`, auth: site.key }))
    expect(fresh.metadata).toEqual({})
    expect(fresh.visitorIds).toEqual([visitors[0]])
  })

  it('a second erasure is a 404 that changes nothing', async () => {
    const site = await createTestWebsite(app)
    const { profileId } = await identified(app, site, newUserId(), visitorId())
    expect((await profilesCall(app, { method: 'DELETE', path: `/profiles/${profileId}`, auth: site.key })).statusCode).toBe(200)
    const before = JSON.stringify(await app.mongo.db.collection('profiles').find({}).sort({ _id: 1 }).toArray())
    expect(expectError(await profilesCall(app, { method: 'DELETE', path: `/profiles/${profileId}`, auth: site.key }), 404)).toMatch(/no profile with this id/)
    expect(JSON.stringify(await app.mongo.db.collection('profiles').find({}).sort({ _id: 1 }).toArray())).toBe(before)
  })

  it('cannot erase another website\'s profile', async () => {
    const site = await createTestWebsite(app)
    const other = await createTestWebsite(app)
    const userId = newUserId()
    const { profileId } = await identified(app, other, userId, visitorId())
    expectError(await profilesCall(app, { method: 'DELETE', path: `/profiles/${profileId}`, auth: site.key }), 404)
    expect(await app.repositories.profiles.findProfile(other.websiteId, userId)).not.toBeNull()
  })

  it('logs one line per erasure with the credential, website and profile, never the user id or the metadata; counts it in /metrics', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const { profileId } = await identified(app, site, userId, visitorId(), { secret_note: 'top secret value' })
    const { token, id: tokenId } = await createTestToken(app, { accountId: site.accountId, permissions: ['identify:delete'] })
    const metric = async (): Promise<number> => {
      const text = (await app.inject('/metrics')).body
      return Number(/^profile_erasures_total (\d+)$/m.exec(text)?.[1])
    }
    const counted = await metric()
    lines.length = 0
    expect((await profilesCall(app, { method: 'DELETE', path: `/profiles/${profileId}`, auth: token, query: { websiteId: site.websiteId } })).statusCode).toBe(200)
    expectError(await profilesCall(app, { method: 'DELETE', path: `/profiles/${profileId}`, auth: token, query: { websiteId: site.websiteId } }), 404)

    const erasures = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.msg === 'profile erased')
    expect(erasures).toHaveLength(1)
    expect(erasures[0]).toMatchObject({ credential: { kind: 'accountToken', id: tokenId }, websiteId: site.websiteId, profileId, visitorLinks: 1 })
    const logged = lines.join('\n')
    for (const value of [userId, 'top secret value', 'secret_note', token]) expect(logged).not.toContain(value)
    expect(await metric()).toBe(counted + 1)
  })
})

describe('rate limit', () => {
  it('counts the profile routes per credential, with the rate-limit headers', async () => {
    const limited = await buildTestApp({ RATE_LIMIT_MAX: 2 })
    try {
      const site = await createTestWebsite(limited)
      for (let call = 0; call < 2; call++) {
        const response = await profilesCall(limited, { path: '/profiles', auth: site.key })
        expect(response.statusCode).toBe(200)
        expect(response.headers['ratelimit-limit']).toBe('2')
      }
      const refused = await profilesCall(limited, { path: '/profiles', auth: site.key })
      expect(expectError(refused, 429)).toMatch(/Rate limit exceeded/)
      expect(refused.headers['retry-after']).toMatch(/^\d+$/)
      // Another credential has its own budget.
      const other = await createTestWebsite(limited)
      expect((await profilesCall(limited, { path: '/profiles', auth: other.key })).statusCode).toBe(200)
    } finally {
      await limited.close()
    }
  })
})
