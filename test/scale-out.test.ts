import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import type { CommandSucceededEvent } from 'mongodb'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { LightMyRequestResponse } from 'fastify'
import type { App } from '../src/app.js'
import { addressKey } from '../src/fleet/auth-failures.js'
import { CREDENTIAL_CHANGES_CHANNEL, publishCredentialChange, subscribeToCredentialChanges } from '../src/fleet/credential-changes.js'
import { createRedisClient } from '../src/fleet/redis.js'
import type { Config } from '../src/config.js'
import { buildTestApp, createTestWebsite, expectError, expectSuccess, identify, testDatabaseUrl, visitorId, withConnectionOptions } from './helper.js'
import { RedisServer } from '../tools/redis-server.js'

/**
 * Two replicas on one database and one Redis (docs/scaling.md), with a
 * client alternating between them.
 */

let redis: RedisServer

beforeAll(async () => { redis = await RedisServer.start() })
afterAll(async () => { await redis.kill() })

/** Two apps as two replicas: one database, one Redis; both closed after `run`. */
async function withFleet (overrides: Partial<Config>, run: (replicas: [App, App]) => Promise<void>): Promise<void> {
  const shared = { MONGO_URL: testDatabaseUrl(), REDIS_URL: redis.url, ...overrides }
  const replicas: [App, App] = [await buildTestApp(shared), await buildTestApp(shared)]
  try {
    await run(replicas)
  } finally {
    await Promise.all(replicas.map(async (app) => { await app.close() }))
  }
}

const unknownKey = (): string => `df_${randomBytes(32).toString('base64url')}`

async function metric (app: App, line: RegExp): Promise<number> {
  const text = (await app.inject('/metrics')).body
  const match = line.exec(text)
  if (match === null) throw new Error(`no ${String(line)} in /metrics`)
  return Number(match[1])
}

describe('addressKey', () => {
  it('keys an IPv6 address by its /64 and an IPv4 address (also IPv4-mapped) as it is', () => {
    expect(addressKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64')
    expect(addressKey('2001:0db8:0001:0002::1')).toBe('2001:db8:1:2::/64')
    expect(addressKey('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64')
    expect(addressKey('203.0.113.7')).toBe('203.0.113.7')
    expect(addressKey('::ffff:203.0.113.7')).toBe('203.0.113.7')
  })
})

describe('the credential-change subscription', () => {
  it('reports changes as missed when its connection drops, and again once a new connection is subscribed: a change published then is heard', async () => {
    const client = createRedisClient(redis.url)
    client.on('error', () => {})
    const heard: string[] = []
    let missed = 0
    const subscriber = subscribeToCredentialChanges(client, (change) => { heard.push(change.id) }, () => {
      missed++
      // Published by another process before this callback returns: heard only if the subscription is already active.
      try {
        execFileSync('redis-cli', ['-p', String(redis.port), 'PUBLISH', CREDENTIAL_CHANGES_CHANNEL, JSON.stringify({ kind: 'websiteKey', id: `after_${missed}` })])
      } catch { /* Redis is down: nothing to hear */ }
    })
    try {
      await vi.waitFor(() => { expect(heard).toStrictEqual(['after_1']) }, { timeout: 5000, interval: 20 })
      await redis.kill()
      await vi.waitFor(() => { expect(missed).toBe(2) }, { timeout: 5000, interval: 20 })
      await redis.restart()
      await vi.waitFor(() => { expect(heard).toStrictEqual(['after_1', 'after_3']) }, { timeout: 10_000, interval: 20 })
    } finally {
      subscriber.disconnect()
      client.disconnect()
    }
  })
})

describe('two replicas sharing one Redis', () => {
  it('share the rate limit: the 200s of both together are exactly RATE_LIMIT_MAX within a window', async () => {
    await withFleet({ RATE_LIMIT_MAX: 7, RATE_LIMIT_WINDOW_MS: 60_000 }, async (replicas) => {
      const site = await createTestWebsite(replicas[0])
      const statuses: number[] = []
      for (let i = 0; i < 20; i++) {
        const response = await identify(replicas[i % 2] as App, { auth: site.key, body: { user_id: `u${i}`, datafast_visitor_id: visitorId() } })
        statuses.push(response.statusCode)
      }
      expect(statuses.filter((status) => status === 200)).toHaveLength(7)
      expect(statuses.filter((status) => status === 429)).toHaveLength(13)
    })
  })

  it('a key revoked through one replica is refused by the other within 1 s, though it cached the key for 30 s', async () => {
    await withFleet({ AUTH_CACHE_TTL_MS: 30_000 }, async ([first, second]) => {
      const site = await createTestWebsite(first)
      const call = async (app: App) => await identify(app, { auth: site.key, body: { user_id: 'revoked_soon', datafast_visitor_id: visitorId() } })
      expectSuccess(await call(first))
      expectSuccess(await call(second))

      await first.repositories.credentials.revokeWebsiteKey(site.keyId)
      await first.invalidateCredential({ kind: 'websiteKey', id: site.keyId })
      await vi.waitFor(async () => { expectError(await call(second), 401) }, { timeout: 1000, interval: 20 })
      expectError(await call(first), 401)
    })
  })

  it('a website suspended by the CLI (publishCredentialChange) is refused by both replicas within 1 s', async () => {
    await withFleet({ AUTH_CACHE_TTL_MS: 30_000 }, async (replicas) => {
      const site = await createTestWebsite(replicas[0])
      const call = async (app: App) => await identify(app, { auth: site.key, body: { user_id: 'suspended_soon', datafast_visitor_id: visitorId() } })
      for (const app of replicas) expectSuccess(await call(app))

      await replicas[0].repositories.websites.setSuspended(site.websiteId, true)
      expect(await publishCredentialChange(redis.url, { kind: 'website', id: site.websiteId })).toBe('published')
      for (const app of replicas) await vi.waitFor(async () => { expectError(await call(app), 403) }, { timeout: 1000, interval: 20 })
    })
  })

  it('share the failed-authentication lockout, an IPv6 address by its /64', async () => {
    await withFleet({ AUTH_FAILURE_MAX: 4 }, async (replicas) => {
      const site = await createTestWebsite(replicas[0])
      const from = async (app: App, remoteAddress: string, auth: string) => await app.inject({
        method: 'POST',
        url: '/api/v1/identify',
        remoteAddress,
        headers: { authorization: `Bearer ${auth}` },
        payload: { user_id: 'locked', datafast_visitor_id: visitorId() }
      })
      // Four failures, alternating replicas and rotating addresses inside one /64.
      for (let i = 0; i < 4; i++) expectError(await from(replicas[i % 2] as App, `2001:db8:5:6::${i + 1}`, unknownKey()), 401)
      for (const app of replicas) {
        expectError(await from(app, '2001:db8:5:6:ffff::9', site.key), 429)
        expectSuccess(await from(app, '2001:db8:5:7::1', site.key))
      }
    })
  })

  it('identical requests get identical answers from either replica', async () => {
    await withFleet({}, async (replicas) => {
      const site = await createTestWebsite(replicas[0])
      const body = { user_id: 'same_everywhere', datafast_visitor_id: visitorId(), name: 'Ada', plan: 'pro' }
      expect((await identify(replicas[0], { auth: site.key, body })).json().data.action).toBe('created')
      const answers = [] as LightMyRequestResponse[]
      for (let i = 0; i < 4; i++) answers.push(await identify(replicas[i % 2] as App, { auth: site.key, body }))
      for (const answer of answers) expect({ status: answer.statusCode, body: answer.json() }).toStrictEqual({ status: answers[0]?.statusCode, body: answers[0]?.json() })
      expect(answers[0]?.json().data.action).toBe('unchanged')

      const invalid = { ...body, user_id: '' }
      const refusals = [await identify(replicas[0], { auth: site.key, body: invalid }), await identify(replicas[1], { auth: site.key, body: invalid })]
      expect(refusals[1]?.json()).toStrictEqual(refusals[0]?.json())
      expectError(refusals[0] as LightMyRequestResponse, 400)
    })
  })

  it('Redis killed mid-load: no call lost, none a 5xx, limits fall back to memory, /readyz stays 200, and it reconnects', async () => {
    await withFleet({ AUTH_CACHE_TTL_MS: 30_000 }, async (replicas) => {
      const site = await createTestWebsite(replicas[0])
      const bodies = Array.from({ length: 60 }, (_, i) => ({ user_id: `load_${i}`, datafast_visitor_id: visitorId(), n: i }))
      const statuses: number[] = []
      for (const [i, body] of bodies.entries()) {
        if (i === 30) await redis.kill()
        statuses.push((await identify(replicas[i % 2] as App, { auth: site.key, body })).statusCode)
      }
      expect(statuses).toStrictEqual(bodies.map(() => 200))
      for (const app of replicas) {
        expect((await app.inject('/readyz')).statusCode).toBe(200)
        expect(await metric(app, /^redis_up (\d+)$/m)).toBe(0)
        expect(await metric(app, /^redis_fallbacks_total\{use="rate-limit"\} (\d+)$/m)).toBeGreaterThan(0)
      }
      // Every acknowledged call is stored: re-sent, each comes back unchanged.
      for (const [i, body] of bodies.entries()) {
        expect((await identify(replicas[(i + 1) % 2] as App, { auth: site.key, body })).json().data.action).toBe('unchanged')
      }

      // Wrong keys during the outage count in memory: 401s, not 5xx.
      for (const app of replicas) {
        expectError(await identify(app, { auth: unknownKey(), body: bodies[0] }), 401)
        expect(await metric(app, /^redis_fallbacks_total\{use="auth-failures"\} (\d+)$/m)).toBeGreaterThan(0)
      }

      // A revocation during the outage reaches the other replica only when Redis is back: it then forgets all it cached.
      const call = async (app: App) => await identify(app, { auth: site.key, body: bodies[0] })
      await replicas[0].repositories.credentials.revokeWebsiteKey(site.keyId)
      await replicas[0].invalidateCredential({ kind: 'websiteKey', id: site.keyId })
      expect(await metric(replicas[0], /^redis_fallbacks_total\{use="credential-changes"\} (\d+)$/m)).toBe(1)
      expectSuccess(await call(replicas[1]))

      await redis.restart()
      for (const app of replicas) await vi.waitFor(async () => { expect(await metric(app, /^redis_up (\d+)$/m)).toBe(1) }, { timeout: 5000, interval: 50 })
      await vi.waitFor(async () => { expectError(await call(replicas[1]), 401) }, { timeout: 5000, interval: 50 })
    })
  })

  it('Redis hung: one failed command per replica opens the breaker, later calls skip Redis, and after it answers again the limits are shared again', async () => {
    await withFleet({ RATE_LIMIT_MAX: 10, RATE_LIMIT_WINDOW_MS: 60_000 }, async (replicas) => {
      const during = await createTestWebsite(replicas[0])
      redis.hang(true)
      try {
        for (let i = 0; i < 16; i++) {
          expectSuccess(await identify(replicas[i % 2] as App, { auth: during.key, body: { user_id: `hung_${i}`, datafast_visitor_id: visitorId() } }))
        }
        for (const app of replicas) {
          // Eight calls each, and Redis was tried (and timed out) only by the first: the others went straight to memory.
          expect(await metric(app, /^redis_command_failures_total (\d+)$/m)).toBe(1)
          expect(await metric(app, /^redis_fallbacks_total\{use="rate-limit"\} (\d+)$/m)).toBe(8)
          expect(await metric(app, /^redis_up (\d+)$/m)).toBe(0)
        }
      } finally {
        redis.hang(false)
      }
      // The background probe finds Redis answering again; a new key's budget is then the fleet's, not each replica's.
      for (const app of replicas) await vi.waitFor(async () => { expect(await metric(app, /^redis_up (\d+)$/m)).toBe(1) }, { timeout: 5000, interval: 50 })
      const after = await createTestWebsite(replicas[0])
      const statuses: number[] = []
      for (let i = 0; i < 16; i++) {
        statuses.push((await identify(replicas[i % 2] as App, { auth: after.key, body: { user_id: `back_${i}`, datafast_visitor_id: visitorId() } })).statusCode)
      }
      expect(statuses.filter((status) => status === 200)).toHaveLength(10)
      for (const app of replicas) expect(await metric(app, /^redis_command_failures_total (\d+)$/m)).toBe(1)
    })
  })

  it('Redis hung (connections open, no answers): calls fall back to memory after the command timeout, none a 5xx', async () => {
    await withFleet({}, async (replicas) => {
      const site = await createTestWebsite(replicas[0])
      redis.hang(true)
      try {
        for (const app of replicas) {
          expectSuccess(await identify(app, { auth: site.key, body: { user_id: 'during_hang', datafast_visitor_id: visitorId() } }))
          expectError(await identify(app, { auth: unknownKey(), body: { user_id: 'during_hang', datafast_visitor_id: visitorId() } }), 401)
          expect(await metric(app, /^redis_fallbacks_total\{use="rate-limit"\} (\d+)$/m)).toBeGreaterThan(0)
          expect(await metric(app, /^redis_fallbacks_total\{use="auth-failures"\} (\d+)$/m)).toBeGreaterThan(0)
        }
      } finally {
        redis.hang(false)
      }
    })
  })
})

describe('two replicas writing one new profile at once', () => {
  it('keep every field and every visitor of the calls they answered 200, with one creation (docs/api.md#profiles-how-visitor-ids-are-kept)', async () => {
    await withFleet({ MONGO_URL: withConnectionOptions(testDatabaseUrl(), { monitorCommands: 'true' }) }, async (replicas) => {
      const site = await createTestWebsite(replicas[0])
      // Inserts of the profile that lost to another one's: proof that the replicas raced.
      let lostInserts = 0
      for (const replica of replicas) {
        replica.mongo.client.on('commandSucceeded', (event: CommandSucceededEvent) => {
          const reply = event.reply as { writeErrors?: Array<{ code: number }> }
          if (event.commandName === 'insert' && reply.writeErrors?.some(({ code }) => code === 11000) === true) lostInserts++
        })
      }
      const CALLS = 12
      // Rounds, each on a user of its own, until one saw a lost insert (bounded): each round must keep everything.
      for (let round = 0; lostInserts === 0 && round < 20; round++) {
        const userId = `shared_user_${String(round)}`
        const visitors = Array.from({ length: CALLS }, () => visitorId())
        const responses = await Promise.all(visitors.map(async (visitor, index) => await identify(replicas[index % 2] as App, {
          auth: site.key,
          body: { user_id: userId, datafast_visitor_id: visitor, [`field_${String(index)}`]: index }
        })))
        for (const response of responses) expectSuccess(response)
        expect(responses.filter((response) => response.json<{ data: { action: string } }>().data.action === 'created')).toHaveLength(1)
        const profile = await replicas[0].repositories.profiles.findProfile(site.websiteId, userId)
        expect(Object.keys(profile?.metadata ?? {}).sort()).toStrictEqual(visitors.map((_, index) => `field_${String(index)}`).sort())
        expect([...profile?.visitorIds ?? []].sort()).toStrictEqual([...visitors].sort())
      }
      expect(lostInserts).toBeGreaterThan(0)
    })
  })
})
