import { randomBytes, randomUUID } from 'node:crypto'
import type { LightMyRequestResponse } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../src/app.js'
import type { DatabasePart } from '../tools/local-database.js'
import { buildTestApp, createTestToken, createTestWebsite, expectError, identify, RETRY_AFTER, type TestWebsite, visitorId } from './helper.js'
import { appOnOwnDatabase, type AppOnOwnDatabase } from './own-database.js'

/**
 * What an operator sees: liveness and readiness, Prometheus metrics, the
 * request id, and the one log line per request that never carries a secret
 * or anything the caller sent.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i


function expectSuccess (response: LightMyRequestResponse, action?: string): void {
  expect(response.statusCode, response.body).toBe(200)
  expect(response.json().status).toBe('success')
  if (action !== undefined) expect(response.json().data.action).toBe(action)
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

interface Sample { name: string, labels: Record<string, string>, value: number }

/** The samples of a Prometheus text exposition; a line that is neither a comment nor a sample fails the test. */
function parseMetrics (text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/.exec(line)
    expect(match, `not a Prometheus sample line: ${line}`).not.toBeNull()
    const labels: Record<string, string> = {}
    for (const pair of (match?.[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]!] = pair[2]!
    }
    samples.push({ name: match![1]!, labels, value: Number(match![3]) })
  }
  return samples
}

/** The value of the sample with exactly these labels, or undefined when there is none. */
function valueOf (samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels)
  return samples.find((sample) =>
    sample.name === name &&
    Object.keys(sample.labels).length === wanted.length &&
    wanted.every(([label, value]) => sample.labels[label] === value)
  )?.value
}

async function scrape (app: App): Promise<{ samples: Sample[], text: string }> {
  const response = await app.inject({ method: 'GET', url: '/metrics' })
  expect(response.statusCode, response.body).toBe(200)
  expect(String(response.headers['content-type'])).toMatch(/^text\/plain; version=0\.0\.4/)
  return { samples: parseMetrics(response.body), text: response.body }
}

describe('liveness', () => {
  it('GET /healthz answers 200 {status: ok}', async () => {
    const app = await buildTestApp()
    try {
      const response = await app.inject({ method: 'GET', url: '/healthz' })
      expect(response.statusCode).toBe(200)
      expect(response.json()).toStrictEqual({ status: 'ok' })
    } finally {
      await app.close()
    }
  })
})

describe('readiness and database errors follow the database', () => {
  let own: AppOnOwnDatabase
  let app: App
  let site: TestWebsite

  beforeAll(async () => {
    own = await appOnOwnDatabase()
    app = own.app
    site = own.site
  })

  afterAll(async () => { await own.close() })

  // PostgreSQL alone matters most: the gateway still answers a ping then.
  it.each<[string, DatabasePart]>([
    ['the gateway and PostgreSQL', 'all'],
    ['PostgreSQL alone (the gateway up)', 'postgres']
  ])('GET /readyz is 200 while the database answers, a 503 envelope within seconds with %s stopped, and 200 again after', async (_what, part) => {
    const up = await app.inject({ method: 'GET', url: '/readyz' })
    expect(up.statusCode, up.body).toBe(200)
    expect(up.json()).toStrictEqual({ status: 'ok' })
    expectSuccess(await identify(app, { auth: site.key, body: { user_id: 'ready_before', datafast_visitor_id: visitorId() } }))
    const errorsBefore = valueOf((await scrape(app)).samples, 'database_errors_total') ?? 0

    await own.database.stop('SIGTERM', part)

    for (let attempt = 0; attempt < 2; attempt++) {
      const started = Date.now()
      const down = await app.inject({ method: 'GET', url: '/readyz' })
      const elapsed = Date.now() - started
      expectError(down, 503)
      expect(String(down.headers['retry-after'])).toMatch(RETRY_AFTER)
      expect(elapsed).toBeLessThan(8000)
      expect(down.json().error.message).not.toMatch(/mongo|ECONNREFUSED|127\.0\.0\.1|topology|socket/i)
    }
    // An identify that needs the database is a 503 too, and the driver's errors are counted.
    expectError(await identify(app, { auth: site.key, body: { user_id: 'ready_during', datafast_visitor_id: visitorId() } }), 503)
    const errorsDuring = valueOf((await scrape(app)).samples, 'database_errors_total') ?? 0
    expect(errorsDuring - errorsBefore, 'database_errors_total after three failed database calls').toBeGreaterThan(0)
    // Liveness does not depend on the database.
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200)

    await own.database.start()

    const deadline = Date.now() + 15_000
    let last: LightMyRequestResponse | undefined
    while (Date.now() < deadline) {
      last = await app.inject({ method: 'GET', url: '/readyz' })
      if (last.statusCode === 200) break
      expectError(last, 503)
      await sleep(250)
    }
    expect(last?.statusCode, last?.body).toBe(200)
    expect(last!.json()).toStrictEqual({ status: 'ok' })
  }, 60_000)
})

describe('GET /metrics', () => {
  let app: App

  beforeAll(async () => { app = await buildTestApp() })
  afterAll(async () => { await app.close() })

  it('serves Prometheus text with identify outcomes, requests by route and status, latency, database errors and process metrics', async () => {
    const site = await createTestWebsite(app)
    const cookieless = await createTestWebsite(app, { cookieless: true })
    const visitor = visitorId()

    expectSuccess(await identify(app, { auth: site.key, body: { user_id: 'metrics_user', datafast_visitor_id: visitor, plan: 'free' } }), 'created')
    expectSuccess(await identify(app, { auth: site.key, body: { user_id: 'metrics_user', datafast_visitor_id: visitor, plan: 'pro' } }), 'updated')
    expectSuccess(await identify(app, { auth: site.key, body: { user_id: 'metrics_user', datafast_visitor_id: visitor, plan: 'pro' } }), 'unchanged')
    expectSuccess(await identify(app, { auth: cookieless.key, body: { user_id: 'metrics_user', datafast_visitor_id: visitor } }), 'skipped')
    expectError(await identify(app, { auth: `df_${'Z'.repeat(43)}`, body: { user_id: 'u', datafast_visitor_id: visitorId() } }), 401)
    expectError(await app.inject({ method: 'GET', url: '/no-such-path-one' }), 404)
    expectError(await app.inject({ method: 'GET', url: '/another/unknown/path?x=1' }), 404)

    const { samples, text } = await scrape(app)
    const identifyRoute = { method: 'POST', route: '/api/v1/identify' }

    for (const action of ['created', 'updated', 'unchanged', 'skipped']) {
      expect(valueOf(samples, 'identify_actions_total', { action }), action).toBe(1)
      expect(text).toContain(`identify_actions_total{action="${action}"} 1`)
    }

    expect(valueOf(samples, 'http_requests_total', { ...identifyRoute, status_code: '200' })).toBe(4)
    expect(valueOf(samples, 'http_requests_total', { ...identifyRoute, status_code: '401' })).toBe(1)
    // Every unknown URL shares one series: scanning paths cannot grow the number of series.
    expect(valueOf(samples, 'http_requests_total', { method: 'GET', route: 'unmatched', status_code: '404' })).toBe(2)
    expect(text).not.toContain('no-such-path-one')
    expect(text).not.toContain('/another/unknown/path')

    const okLatency = { ...identifyRoute, status_code: '200' }
    expect(valueOf(samples, 'http_request_duration_seconds_bucket', { ...okLatency, le: '+Inf' })).toBe(4)
    expect(valueOf(samples, 'http_request_duration_seconds_count', okLatency)).toBe(4)
    expect(valueOf(samples, 'http_request_duration_seconds_sum', okLatency)).toBeGreaterThan(0)
    const buckets = samples.filter((sample) => sample.name === 'http_request_duration_seconds_bucket' &&
      sample.labels.route === '/api/v1/identify' && sample.labels.status_code === '200')
    expect(buckets.length).toBeGreaterThan(1)

    expect(valueOf(samples, 'database_errors_total')).toBe(0)
    expect(text).toMatch(/^# TYPE database_errors_total counter$/m)

    expect(valueOf(samples, 'process_resident_memory_bytes')).toBeGreaterThan(0)
    expect(samples.some((sample) => sample.name === 'nodejs_eventloop_lag_seconds')).toBe(true)
  })

  it('is a 404 envelope when METRICS_ENABLED is false', async () => {
    const off = await buildTestApp({ METRICS_ENABLED: false })
    try {
      expectError(await off.inject({ method: 'GET', url: '/metrics' }), 404)
    } finally {
      await off.close()
    }
  })
})

describe('request ids and log lines', () => {
  const lines: string[] = []
  const logStream = { write (line: string) { lines.push(line) } }
  let app: App
  let site: TestWebsite

  beforeAll(async () => {
    app = await buildTestApp({ LOG_LEVEL: 'trace', NODE_ENV: 'production' }, { logStream })
    site = await createTestWebsite(app)
  })
  afterAll(async () => { await app.close() })

  type Entry = Record<string, unknown>
  const entries = (): Entry[] => lines.map((line) => JSON.parse(line) as Entry)
  const requestLines = (reqId: string): Entry[] => entries().filter((entry) => entry.msg === 'request' && entry.reqId === reqId)

  /** The one 'request' line of the call with this request id. */
  function lineOf (reqId: string): Entry {
    const found = requestLines(reqId)
    expect(found, `request lines with reqId ${reqId}`).toHaveLength(1)
    return found[0]!
  }

  it('echoes a safe X-Request-Id and logs it as reqId', async () => {
    const response = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'abc-123' } })
    expect(response.statusCode).toBe(200)
    expect(response.headers['x-request-id']).toBe('abc-123')
    const line = lineOf('abc-123')
    expect(line).toMatchObject({ msg: 'request', method: 'GET', route: '/healthz', status: 200, reqId: 'abc-123' })
  })

  it('generates a UUID when the caller sends none, and echoes it', async () => {
    const first = await app.inject({ method: 'GET', url: '/healthz' })
    const second = await app.inject({ method: 'GET', url: '/healthz' })
    const id = String(first.headers['x-request-id'])
    expect(id).toMatch(UUID)
    expect(String(second.headers['x-request-id'])).toMatch(UUID)
    expect(second.headers['x-request-id']).not.toBe(id)
    lineOf(id)
  })

  it('replaces an unsafe X-Request-Id with a generated UUID', async () => {
    const unsafe = ['<script>alert(1)</script>', 'abc 123', 'a'.repeat(129), 'id"with"quotes', 'semi;colon{}']
    for (const sent of unsafe) {
      const response = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': sent } })
      expect(response.statusCode).toBe(200)
      const echoed = String(response.headers['x-request-id'])
      expect(echoed, sent).toMatch(UUID)
      lineOf(echoed)
      expect(lines.join('\n'), sent).not.toContain(sent)
    }
    // 128 characters of the safe alphabet are still the caller's own.
    const longest = 'b'.repeat(128)
    const response = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': longest } })
    expect(response.headers['x-request-id']).toBe(longest)
  })

  it('writes exactly one JSON line per request with method, route, status, duration, website, action and request id', async () => {
    const token = await createTestToken(app, { accountId: site.accountId })
    const visitor = visitorId()
    const calls: Array<{ id: string, send: (id: string) => Promise<LightMyRequestResponse>, expected: Entry, authenticated: boolean }> = [
      {
        id: `created-${randomUUID()}`,
        send: async (id) => await identify(app, { auth: site.key, body: { user_id: 'log_user', datafast_visitor_id: visitor }, headers: { 'x-request-id': id } }),
        expected: { method: 'POST', route: '/api/v1/identify', status: 200, websiteId: site.websiteId, action: 'created' },
        authenticated: true
      },
      {
        id: `unchanged-${randomUUID()}`,
        send: async (id) => await identify(app, { auth: token.token, websiteId: site.websiteId, body: { user_id: 'log_user', datafast_visitor_id: visitor }, headers: { 'x-request-id': id } }),
        expected: { method: 'POST', route: '/api/v1/identify', status: 200, websiteId: site.websiteId, action: 'unchanged' },
        authenticated: true
      },
      {
        id: `invalid-${randomUUID()}`,
        send: async (id) => await identify(app, { auth: site.key, body: { user_id: 'log_user' }, headers: { 'x-request-id': id } }),
        expected: { method: 'POST', route: '/api/v1/identify', status: 400, websiteId: site.websiteId },
        authenticated: true
      },
      {
        id: `anonymous-${randomUUID()}`,
        send: async (id) => await identify(app, { body: { user_id: 'log_user', datafast_visitor_id: visitor }, headers: { 'x-request-id': id } }),
        expected: { method: 'POST', route: '/api/v1/identify', status: 401 },
        authenticated: false
      },
      {
        id: `unknown-${randomUUID()}`,
        send: async (id) => await app.inject({ method: 'GET', url: '/nowhere', headers: { 'x-request-id': id } }),
        expected: { method: 'GET', route: 'unmatched', status: 404 },
        authenticated: false
      }
    ]
    for (const call of calls) {
      const response = await call.send(call.id)
      expect(response.statusCode, response.body).toBe(call.expected.status)
      expect(response.headers['x-request-id']).toBe(call.id)
      const line = lineOf(call.id)
      expect(line, call.id).toMatchObject({ ...call.expected, msg: 'request', reqId: call.id })
      expect(typeof line.durationMs, call.id).toBe('number')
      expect(line.durationMs as number).toBeGreaterThanOrEqual(0)
      if (!call.authenticated) expect(line.websiteId, call.id).toBeUndefined()
      if (call.expected.action === undefined) expect(line.action, call.id).toBeUndefined()
    }
    for (const line of lines) expect(() => JSON.parse(line) as unknown, line).not.toThrow()
  })

  it('no line at any level carries the Authorization header, a key, a token or anything the caller sent', async () => {
    const marker = `mrk${randomBytes(8).toString('hex')}`
    const token = await createTestToken(app, { accountId: site.accountId })
    const wrongKey = `df_${(marker + 'Q'.repeat(43)).slice(0, 43)}`
    const wrongToken = `dft_${(marker + 'R'.repeat(43)).slice(0, 43)}`
    const malformedKey = `df_${marker}`
    const startedAt = lines.length
    const json = { 'content-type': 'application/json' }
    const post = async (payload: string | object, headers: Record<string, string> = {}, url = '/api/v1/identify') =>
      await app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${site.key}`, ...headers }, payload })

    // A valid key and a valid token, with the marker in the user_id and in metadata values and names, top level and nested.
    expectSuccess(await identify(app, {
      auth: site.key,
      body: { user_id: `user-${marker}`, datafast_visitor_id: visitorId(), email: `${marker}@example.com`, nested: { deep: [marker, { again: marker }] }, [`field_${marker}`]: 1 }
    }))
    expectSuccess(await identify(app, {
      auth: token.token,
      websiteId: site.websiteId,
      body: { user_id: `user-${marker}`, datafast_visitor_id: visitorId(), note: marker }
    }))
    // Wrong credentials carrying the marker.
    expectError(await identify(app, { auth: wrongKey, body: { user_id: 'u', datafast_visitor_id: visitorId() } }), 401)
    expectError(await identify(app, { auth: wrongToken, websiteId: site.websiteId, body: { user_id: 'u', datafast_visitor_id: visitorId() } }), 401)
    expectError(await identify(app, { auth: malformedKey, body: { user_id: 'u', datafast_visitor_id: visitorId() } }), 401)
    expectError(await app.inject({ method: 'POST', url: '/api/v1/identify', headers: { authorization: `Basic ${marker}` }, payload: {} }), 401)
    // Validation failures whose values hold the marker.
    expectError(await identify(app, { auth: site.key, body: { user_id: 'u', datafast_visitor_id: marker } }), 400)
    expectError(await identify(app, { auth: site.key, body: { user_id: 7, datafast_visitor_id: visitorId(), other: marker } }), 400)
    expectError(await identify(app, { auth: site.key, body: { user_id: 'u', datafast_visitor_id: visitorId(), 'a.b': marker } }), 400)
    expectError(await identify(app, { auth: site.key, body: { user_id: 'u', datafast_visitor_id: visitorId(), outer: { 'x.y': marker } } }), 400)
    expectError(await post(`{"user_id":"${marker}",`, json), 400)
    // A 404 with the marker in the query string, a 413 and a 415 whose bodies hold it.
    expectError(await app.inject({ method: 'GET', url: `/nowhere?secret=${marker}&key=${site.key}` }), 404)
    expectError(await post(JSON.stringify({ user_id: marker, datafast_visitor_id: visitorId(), pad: `${marker}${'x'.repeat(70_000)}` }), json), 413)
    expectError(await post(JSON.stringify({ user_id: marker, datafast_visitor_id: visitorId() }), { 'content-type': 'text/plain' }), 415)

    const captured = lines.slice(startedAt)
    expect(captured.length).toBeGreaterThanOrEqual(14)
    for (const line of captured) expect(() => JSON.parse(line) as unknown, line).not.toThrow()

    const all = lines.join('\n')
    const secrets: Record<string, string> = {
      'the Authorization header': `Bearer ${site.key}`,
      'the website key': site.key,
      'the website key without its prefix': site.key.slice('df_'.length),
      'the account token': token.token,
      'the account token without its prefix': token.token.slice('dft_'.length),
      'a wrong key': wrongKey,
      'a wrong token': wrongToken,
      'the marker': marker
    }
    for (const [what, secret] of Object.entries(secrets)) {
      expect(all.includes(secret), `${what} appears in a log line`).toBe(false)
      expect(all.toLowerCase().includes(secret.toLowerCase()), `${what} appears in a log line (any case)`).toBe(false)
    }
  })

  it('an unexpected error logs its type and stack, never its message with what the caller sent', async () => {
    const marker = `mrk${randomBytes(8).toString('hex')}`
    const userId = `user-${marker}`
    const profiles = app.repositories.profiles
    const upsertProfile = profiles.upsertProfile.bind(profiles)
    // A bug that quotes the call in its message, as careless code (or a library) may.
    profiles.upsertProfile = async (input) => {
      throw new TypeError(`cannot store ${JSON.stringify(input)} for ${site.key}`)
    }
    const reqId = `crash-${randomUUID()}`
    try {
      const response = await identify(app, {
        auth: site.key,
        body: { user_id: userId, datafast_visitor_id: visitorId(), email: `${marker}@example.com`, nested: { deep: marker } },
        headers: { 'x-request-id': reqId }
      })
      expect(expectError(response, 500)).toBe('Internal server error')
    } finally {
      profiles.upsertProfile = upsertProfile
    }
    const logged = entries().filter((entry) => entry.reqId === reqId)
    const text = JSON.stringify(logged)
    for (const [what, secret] of Object.entries({ 'the website key': site.key, 'the user id': userId, 'a metadata value': marker })) {
      expect(text.includes(secret), `${what} appears in a log line`).toBe(false)
    }
    const error = logged.find((entry) => entry.msg === 'unexpected error')
    expect(error, text).toMatchObject({ level: 50, err: { type: 'TypeError', stack: expect.stringMatching(/\n\s+at /) } })
  })
})
