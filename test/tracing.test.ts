import { randomBytes, randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import { SpanStatusCode } from '@opentelemetry/api'
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RedisServer } from '../tools/redis-server.js'
import { startTracing, stopTracing, type Tracing } from '../src/tracing/start.js'

/**
 * Traces (docs/operations.md#tracing): the request spans of Fastify, the
 * command spans of mongodb and ioredis under them, the trace ids in the log
 * lines, and nothing secret or sent by a caller in any span.
 *
 * Tracing starts before this file loads the app: the instrumentations hook
 * fastify, mongodb and ioredis as Node loads them (vitest leaves packages
 * to Node's own loader), so the app and the helper come in by dynamic
 * imports once it runs.
 *
 * One difference remains: vitest imports a package by its resolved path
 * (…/ioredis/built/index.js), which import-in-the-middle does not take for
 * the package `ioredis`, so its instrumentation would not patch it. Loading
 * it once by name through require() lets the same instrumentation patch the
 * Redis class, as Node's import of 'ioredis' in src/fleet/redis.ts does in the
 * server; the import that follows gets the same, patched, class.
 */

const loadHelper = async () => await import('./helper.js')

const exporter = new InMemorySpanExporter()
let tracing: Tracing
let helper: Awaited<ReturnType<typeof loadHelper>>
let redis: RedisServer

beforeAll(async () => {
  const started = await startTracing({ exporter })
  if (started === null) throw new Error('tracing did not start')
  tracing = started
  createRequire(import.meta.url)('ioredis')
  helper = await loadHelper()
  redis = await RedisServer.start()
})

afterAll(async () => {
  await stopTracing()
  await redis.kill()
})

const FASTIFY_SCOPE = '@fastify/otel'
const MONGODB_SCOPE = '@opentelemetry/instrumentation-mongodb'
const IOREDIS_SCOPE = '@opentelemetry/instrumentation-ioredis'

const scopeOf = (span: ReadableSpan): string => span.instrumentationScope.name
const parentIdOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId

/** The spans finished since the last call, once the batch has been exported. */
async function takeSpans (): Promise<ReadableSpan[]> {
  await tracing.flush()
  const spans = exporter.getFinishedSpans()
  exporter.reset()
  return spans
}

/** Every text of a span an exporter sends: its name, attribute names and values, events and status. */
function textsOf (span: ReadableSpan): string[] {
  const attributes = (record: Record<string, unknown> | undefined): string[] =>
    Object.entries(record ?? {}).flatMap(([name, value]) => [name, JSON.stringify(value)])
  return [
    span.name,
    ...attributes(span.attributes),
    ...span.events.flatMap((event) => [event.name, ...attributes(event.attributes)]),
    span.status.message ?? '',
    ...span.links.flatMap((link) => attributes(link.attributes))
  ]
}

describe('spans', () => {
  it('identify, batch, profile reads and an erasure leave request and command spans, and no span holds a key, token, user id, visitor id or metadata', async () => {
    const app = await helper.buildTestApp({ REDIS_URL: redis.url })
    try {
      const site = await helper.createTestWebsite(app)
      const token = await helper.createTestToken(app, { accountId: site.accountId, permissions: ['identify:write', 'identify:read', 'identify:delete'] })
      const marker = `mrk${randomBytes(8).toString('hex')}`
      const userId = `user-${marker}`
      const batchUserId = `batch-${marker}`
      const visitor = helper.visitorId()
      const batchVisitor = helper.visitorId()
      const fieldName = `field_${marker}`
      const value = `value-${marker}`
      await takeSpans()

      helper.expectSuccess(await helper.identify(app, { auth: site.key, body: { user_id: userId, datafast_visitor_id: visitor, email: `${marker}@example.com`, [fieldName]: value } }))
      // The same user again with a token: the merge of a listed visitor, one update pipeline with the metadata in it.
      helper.expectSuccess(await helper.identify(app, { auth: token.token, websiteId: site.websiteId, body: { user_id: userId, datafast_visitor_id: visitor, nested: { deep: [value] } } }))
      const batch = await app.inject({
        method: 'POST',
        url: '/api/v1/identify/batch',
        headers: { authorization: `Bearer ${site.key}` },
        payload: { items: [{ user_id: batchUserId, datafast_visitor_id: batchVisitor, plan: value }, { user_id: userId, datafast_visitor_id: visitor, plan: value }] }
      })
      expect(batch.statusCode, batch.body).toBe(200)
      const profileId = String(batch.json().data.results[0].profileId)
      const read = async (url: string, method: 'GET' | 'DELETE' = 'GET') => {
        const response = await app.inject({ method, url, query: { websiteId: site.websiteId }, headers: { authorization: `Bearer ${token.token}` } })
        expect(response.statusCode, `${method} ${url}: ${response.body}`).toBe(200)
      }
      await read(`/api/v1/profiles?user_id=${encodeURIComponent(userId)}`)
      await read(`/api/v1/profiles/${profileId}`)
      await read(`/api/v1/visitors/${visitor}/profile`)
      await read(`/api/v1/profiles/${profileId}`, 'DELETE')
      // Unknown paths and wrong credentials carrying secrets.
      helper.expectError(await app.inject({ method: 'GET', url: `/nowhere/${userId}?key=${site.key}&visitor=${visitor}` }), 404)
      // A wrong key from a client address of its own, which the failed-authentication count keys by (in Redis).
      const client = '203.0.113.77'
      helper.expectError(await app.inject({
        method: 'POST',
        url: '/api/v1/identify',
        remoteAddress: client,
        headers: { authorization: `Bearer df_${(marker + 'Q'.repeat(43)).slice(0, 43)}` },
        payload: { user_id: userId, datafast_visitor_id: visitor }
      }), 401)
      // A bug whose message quotes the call, as careless code (or a library) may: the request span records the error.
      const profiles = app.repositories.profiles
      const upsertProfile = profiles.upsertProfile.bind(profiles)
      profiles.upsertProfile = async (input) => { throw new TypeError(`cannot store ${JSON.stringify(input)} for ${site.key}`) }
      try {
        helper.expectError(await helper.identify(app, { auth: site.key, body: { user_id: userId, datafast_visitor_id: visitor, [fieldName]: value } }), 500)
      } finally {
        profiles.upsertProfile = upsertProfile
      }

      const spans = await takeSpans()
      const routes = new Set(spans.filter((span) => scopeOf(span) === FASTIFY_SCOPE).map((span) => span.name))
      for (const route of ['POST /api/v1/identify', 'POST /api/v1/identify/batch', 'GET /api/v1/profiles', 'GET /api/v1/profiles/:profileId',
        'GET /api/v1/visitors/:visitorId/profile', 'DELETE /api/v1/profiles/:profileId', 'GET unmatched']) {
        expect(routes, route).toContain(route)
      }
      expect(spans.filter((span) => scopeOf(span) === MONGODB_SCOPE).length, 'mongodb command spans').toBeGreaterThan(10)
      expect(spans.filter((span) => scopeOf(span) === IOREDIS_SCOPE).length, 'Redis command spans (the rate limit)').toBeGreaterThan(0)
      expect(spans.filter((span) => span.status.code === SpanStatusCode.ERROR && span.attributes['http.response.status_code'] === 500), 'the failed identify').toHaveLength(1)

      const secrets: Record<string, string> = {
        'the website key': site.key,
        'the website key without its prefix': site.key.slice('df_'.length),
        'the account token': token.token,
        'the account token without its prefix': token.token.slice('dft_'.length),
        'the user id': userId,
        'the batch user id': batchUserId,
        'the visitor id': visitor,
        'the batch visitor id': batchVisitor,
        'the profile id (derived from the user id)': profileId,
        'a metadata value or field name (the marker)': marker,
        'the client address': client,
        'the key\'s id (in Redis keys)': site.keyId,
        'the token\'s id (in Redis keys)': token.id
      }
      const leaks: string[] = []
      for (const span of spans) {
        const texts = textsOf(span).map((text) => text.toLowerCase())
        for (const [what, secret] of Object.entries(secrets)) {
          const found = texts.find((text) => text.includes(secret.toLowerCase()))
          if (found !== undefined) leaks.push(`${what} in span "${span.name}" (${scopeOf(span)}): ${found.slice(0, 300)}`)
        }
      }
      expect(leaks).toStrictEqual([])
    } finally {
      await app.close()
    }
  })

  it('an identify\'s database commands are spans of its trace, under its request span', async () => {
    const app = await helper.buildTestApp()
    try {
      const site = await helper.createTestWebsite(app)
      await takeSpans()
      helper.expectSuccess(await helper.identify(app, { auth: site.key, body: { user_id: `user_${randomUUID()}`, datafast_visitor_id: helper.visitorId(), plan: 'pro' } }))
      const spans = await takeSpans()
      // The request span is Fastify's only span (no handler or hook spans: docs/operations.md#tracing).
      const requests = spans.filter((span) => scopeOf(span) === FASTIFY_SCOPE)
      expect(requests.map((span) => span.name)).toStrictEqual(['POST /api/v1/identify'])
      const request = requests[0]!
      expect(request.attributes['http.route']).toBe('/api/v1/identify')
      expect(request.attributes['http.response.status_code']).toBe(200)
      const commands = spans.filter((span) => scopeOf(span) === MONGODB_SCOPE)
      // The credential lookup, then the profile's lookup and writes.
      expect(commands.length).toBeGreaterThanOrEqual(3)
      for (const command of commands) {
        expect(command.spanContext().traceId, command.name).toBe(request.spanContext().traceId)
        expect(parentIdOf(command), `${command.name}'s parent`).toBe(request.spanContext().spanId)
      }
    } finally {
      await app.close()
    }
  })
})

describe('log lines', () => {
  it('each request\'s log lines carry the trace id and span id of its request span', async () => {
    const lines: string[] = []
    const app = await helper.buildTestApp({ LOG_LEVEL: 'info', NODE_ENV: 'production' }, { logStream: { write (line: string) { lines.push(line) } } })
    try {
      const site = await helper.createTestWebsite(app)
      await takeSpans()
      const calls = [
        { id: `identify-${randomUUID()}`, route: 'POST /api/v1/identify', send: async (id: string) => await helper.identify(app, { auth: site.key, body: { user_id: 'log_user', datafast_visitor_id: helper.visitorId() }, headers: { 'x-request-id': id } }) },
        { id: `refused-${randomUUID()}`, route: 'POST /api/v1/identify', send: async (id: string) => await helper.identify(app, { body: {}, headers: { 'x-request-id': id } }) },
        { id: `unknown-${randomUUID()}`, route: 'GET unmatched', send: async (id: string) => await app.inject({ method: 'GET', url: '/nowhere', headers: { 'x-request-id': id } }) }
      ]
      const ids: Array<{ reqId: string, route: string, traceId: string, spanId: string }> = []
      for (const call of calls) {
        await call.send(call.id)
        const [span, ...others] = (await takeSpans()).filter((each) => scopeOf(each) === FASTIFY_SCOPE && each.name === call.route)
        expect(others, call.id).toHaveLength(0)
        ids.push({ reqId: call.id, route: call.route, traceId: span!.spanContext().traceId, spanId: span!.spanContext().spanId })
      }
      const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
      for (const { reqId, traceId, spanId } of ids) {
        const requestLines = entries.filter((entry) => entry.reqId === reqId)
        expect(requestLines.filter((entry) => entry.msg === 'request'), reqId).toHaveLength(1)
        for (const entry of requestLines) expect(entry, reqId).toMatchObject({ trace_id: traceId, span_id: spanId })
      }
    } finally {
      await app.close()
    }
  })
})
