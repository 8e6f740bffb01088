import { randomBytes } from 'node:crypto'
import type { LightMyRequestResponse } from 'fastify'
import { describe, expect, it } from 'vitest'
import type { App } from '../src/app.js'
import { buildTestApp, createTestToken, createTestWebsite, expectError, expectSuccess, identify, RETRY_AFTER, visitorId } from './helper.js'

/**
 * The service's own protection (docs/api.md#limits): a call budget per key or
 * token, a budget of failed authentications per client address, load
 * shedding when the event loop lags, and a configurable body limit.
 */



function expect429 (response: LightMyRequestResponse): void {
  expectError(response, 429)
  expect(String(response.headers['retry-after'])).toMatch(RETRY_AFTER)
}

const body = (userId = 'limited_user'): Record<string, unknown> => ({ user_id: userId, datafast_visitor_id: visitorId() })
const unknownKey = (): string => `df_${randomBytes(32).toString('base64url')}`
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

async function withApp (overrides: Parameters<typeof buildTestApp>[0], run: (app: App) => Promise<void>): Promise<void> {
  const app = await buildTestApp(overrides)
  try {
    await run(app)
  } finally {
    await app.close()
  }
}

describe('rate limit per key or token', () => {
  // With the credential cache on, all but a credential's first call are resolved synchronously (src/plugins/app/auth.ts): the budget must follow it there too.
  it.each([0, 60_000])('a key gets RATE_LIMIT_MAX calls per window with RateLimit headers, then 429; other credentials keep their own budget (AUTH_CACHE_TTL_MS=%i)', async (ttl) => {
    await withApp({ RATE_LIMIT_MAX: 3, RATE_LIMIT_WINDOW_MS: 60_000, AUTH_CACHE_TTL_MS: ttl }, async (app) => {
      const siteA = await createTestWebsite(app)
      const siteB = await createTestWebsite(app)

      const remaining: number[] = []
      for (let i = 0; i < 3; i++) {
        const response = await identify(app, { auth: siteA.key, body: body() })
        expectSuccess(response)
        expect(response.headers['ratelimit-limit']).toBe('3')
        remaining.push(Number(response.headers['ratelimit-remaining']))
      }
      expect(remaining).toStrictEqual([2, 1, 0])

      const limited = await identify(app, { auth: siteA.key, body: body() })
      expect429(limited)
      expect(String(limited.headers['ratelimit-reset'])).toMatch(/^\d+$/)
      expect(Number(limited.headers['ratelimit-reset'])).toBeGreaterThan(0)
      expect(Number(limited.headers['ratelimit-reset'])).toBeLessThanOrEqual(60)

      // Another website's key, from the same address, is not affected: the budget is per credential.
      const other = await identify(app, { auth: siteB.key, body: body() })
      expectSuccess(other)
      expect(other.headers['ratelimit-remaining']).toBe('2')

      // An account token acting on website A has a budget of its own too.
      const { token } = await createTestToken(app, { accountId: siteA.accountId })
      for (let i = 0; i < 3; i++) {
        const response = await identify(app, { auth: token, websiteId: siteA.websiteId, body: body() })
        expectSuccess(response)
        expect(response.headers['ratelimit-remaining']).toBe(String(2 - i))
      }
      expect429(await identify(app, { auth: token, websiteId: siteA.websiteId, body: body() }))

      // Key A is still over its budget.
      expect429(await identify(app, { auth: siteA.key, body: body() }))
    })
  })
})

describe('failed authentications per client address', () => {
  it('after AUTH_FAILURE_MAX failures an address gets 429 with Retry-After; other addresses are served; successes do not count', async () => {
    await withApp({ AUTH_FAILURE_MAX: 3 }, async (app) => {
      const site = await createTestWebsite(app)

      // Many successful calls first: they spend none of the failure budget.
      for (let i = 0; i < 5; i++) expectSuccess(await identify(app, { auth: site.key, body: body() }))

      // Three failures, with successes in between that do not reset or add to the count.
      expectError(await identify(app, { auth: unknownKey(), body: body() }), 401)
      expectSuccess(await identify(app, { auth: site.key, body: body() }))
      expectError(await identify(app, { auth: unknownKey(), body: body() }), 401)
      expectSuccess(await identify(app, { auth: site.key, body: body() }))
      expectError(await identify(app, { auth: unknownKey(), body: body() }), 401)

      // The fourth attempt from this address is refused, whatever key it carries (the credential cache is off here).
      expect429(await identify(app, { auth: unknownKey(), body: body() }))
      expect429(await identify(app, { auth: site.key, body: body() }))

      // Another address is still served.
      const elsewhere = async (auth: string) => await app.inject({
        method: 'POST',
        url: '/api/v1/identify',
        remoteAddress: '10.0.0.2',
        headers: { authorization: `Bearer ${auth}` },
        payload: body()
      })
      expectError(await elsewhere(unknownKey()), 401)
      expectSuccess(await elsewhere(site.key))
    })
  })

  it('a key this process resolved recently keeps working at a locked address; unknown keys do not', async () => {
    await withApp({ AUTH_FAILURE_MAX: 2, AUTH_CACHE_TTL_MS: 60_000 }, async (app) => {
      const site = await createTestWebsite(app)
      const cold = await createTestWebsite(app)
      expectSuccess(await identify(app, { auth: site.key, body: body() }))
      expectError(await identify(app, { auth: unknownKey(), body: body() }), 401)
      expectError(await identify(app, { auth: unknownKey(), body: body() }), 401)
      expect429(await identify(app, { auth: unknownKey(), body: body() }))
      expect429(await identify(app, { auth: cold.key, body: body() }))
      expectSuccess(await identify(app, { auth: site.key, body: body() }))
    })
  })

  it('a revoked key this process has cached still counts as a failure at each call, answered from the cache', async () => {
    await withApp({ AUTH_FAILURE_MAX: 2, AUTH_CACHE_TTL_MS: 60_000 }, async (app) => {
      const site = await createTestWebsite(app)
      await app.repositories.credentials.revokeWebsiteKey(site.keyId)
      // The first call reads the revoked key, and the cache keeps it; the second is answered from the cache.
      expectError(await identify(app, { auth: site.key, body: body() }), 401)
      expectError(await identify(app, { auth: site.key, body: body() }), 401)
      expect429(await identify(app, { auth: unknownKey(), body: body() }))
    })
  })
})

describe('load shedding', () => {
  /**
   * Keeps the event loop busy for `lagMs`, in synchronous slices of 100 ms as
   * a saturated process would be, calling the API (without a key, so a
   * served call is a 401) between slices and for `pollMs` after; returns the
   * first 503, or undefined when every call was served.
   */
  async function lagAndPoll (app: App, lagMs: number, pollMs: number): Promise<{ overloaded: LightMyRequestResponse | undefined, statuses: Set<number> }> {
    const statuses = new Set<number>()
    const lagUntil = Date.now() + lagMs
    const deadline = lagUntil + pollMs
    while (Date.now() < deadline) {
      if (Date.now() < lagUntil) {
        const sliceEnd = Math.min(Date.now() + 100, lagUntil)
        while (Date.now() < sliceEnd) {
          // spin: a synchronous hot path
        }
        await new Promise((resolve) => setImmediate(resolve))
      } else {
        await sleep(25)
      }
      const response = await app.inject({ method: 'POST', url: '/api/v1/identify' })
      statuses.add(response.statusCode)
      if (response.statusCode === 503) return { overloaded: response, statuses }
    }
    return { overloaded: undefined, statuses }
  }

  it('a lagging event loop gets 503 with Retry-After in the envelope', async () => {
    await withApp({ PRESSURE_MAX_EVENT_LOOP_DELAY_MS: 20 }, async (app) => {
      expect((await app.inject({ method: 'POST', url: '/api/v1/identify' })).statusCode).toBe(401)
      const { overloaded, statuses } = await lagAndPoll(app, 1500, 3000)
      expect(overloaded, `statuses seen: ${[...statuses].join(', ')}`).toBeDefined()
      expectError(overloaded!, 503)
      expect(String(overloaded!.headers['retry-after'])).toMatch(RETRY_AFTER)
      // Liveness is not shed: an overloaded process is still alive.
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200)
    })
  })

  it('PRESSURE_MAX_EVENT_LOOP_DELAY_MS=0 turns load shedding off', async () => {
    await withApp({ PRESSURE_MAX_EVENT_LOOP_DELAY_MS: 0 }, async (app) => {
      const { overloaded, statuses } = await lagAndPoll(app, 1500, 3000)
      expect(overloaded).toBeUndefined()
      expect([...statuses]).toStrictEqual([401])
    })
  })
})

describe('body limit', () => {
  /** A JSON identify body of exactly `bytes` bytes. */
  function bodyOfSize (bytes: number): string {
    const base = { user_id: 'big', datafast_visitor_id: visitorId(), pad: '' }
    const text = JSON.stringify({ ...base, pad: 'x'.repeat(bytes - Buffer.byteLength(JSON.stringify(base))) })
    expect(Buffer.byteLength(text)).toBe(bytes)
    return text
  }

  const post = async (app: App, key: string, payload: string) => await app.inject({
    method: 'POST',
    url: '/api/v1/identify',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    payload
  })

  it('BODY_LIMIT_BYTES=2048 refuses a 3 KB body with 413; the default limit accepts it', async () => {
    const threeKb = bodyOfSize(3072)
    await withApp({ BODY_LIMIT_BYTES: 2048 }, async (app) => {
      const site = await createTestWebsite(app)
      expectError(await post(app, site.key, threeKb), 413)
    })
    await withApp({}, async (app) => {
      const site = await createTestWebsite(app)
      expectSuccess(await post(app, site.key, threeKb))
    })
  })
})
