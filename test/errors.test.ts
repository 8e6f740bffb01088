import type { LightMyRequestResponse } from 'fastify'
import { MongoServerError } from 'mongodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../src/app.js'
import { isDatabaseUnavailable } from '../src/storage/mongo-errors.js'
import type { DatabasePart } from '../tools/local-database.js'
import { buildTestApp, createTestWebsite, expectError, expectSuccess, identify, type TestWebsite, visitorId } from './helper.js'
import { appOnOwnDatabase, type AppOnOwnDatabase } from './own-database.js'

/**
 * docs/api.md#errors: one error envelope on every error of every route, the
 * body rules, the validation messages, and a 503 instead of a hang when the
 * database is down.
 */

const app = await buildTestApp()
afterAll(async () => { await app.close() })

const site = await createTestWebsite(app)


/** An authenticated POST /api/v1/identify with a raw payload and headers. */
async function postRaw (payload: string | Buffer | undefined, headers: Record<string, string> = {}, target: App = app, key = site.key) {
  return await target.inject({
    method: 'POST',
    url: '/api/v1/identify',
    headers: { authorization: `Bearer ${key}`, ...headers },
    ...(payload === undefined ? {} : { payload })
  })
}

const json = { 'content-type': 'application/json' }

/** A JSON body of exactly `bytes` bytes, padded with an ASCII metadata field. */
function bodyOfSize (bytes: number): string {
  const base = { user_id: 'big', datafast_visitor_id: visitorId(), pad: '' }
  const overhead = Buffer.byteLength(JSON.stringify(base))
  const text = JSON.stringify({ ...base, pad: 'x'.repeat(bytes - overhead) })
  expect(Buffer.byteLength(text)).toBe(bytes)
  return text
}

describe('unknown routes and methods', () => {
  it('an unknown route gets the 404 envelope', async () => {
    expectError(await app.inject({ method: 'GET', url: '/nope' }), 404)
    expectError(await app.inject({ method: 'GET', url: '/' }), 404)
    expectError(await app.inject({ method: 'POST', url: '/api/v1/nope', headers: { authorization: `Bearer ${site.key}` }, payload: {} }), 404)
    expectError(await app.inject({ method: 'POST', url: '/api/v2/identify', payload: { user_id: 'u', datafast_visitor_id: visitorId() } }), 404)
    expectError(await app.inject({ method: 'GET', url: '/nope?user_id=1&x=%00' }), 404)
  })

  it('a wrong method on /api/v1/identify gets the 405 envelope and an Allow header naming POST', async () => {
    for (const method of ['GET', 'PUT', 'PATCH', 'DELETE'] as const) {
      const response = await app.inject({ method, url: '/api/v1/identify', headers: { authorization: `Bearer ${site.key}` } })
      expectError(response, 405)
      expect(String(response.headers.allow), method).toMatch(/\bPOST\b/)
    }
    // Without credentials too: the method is wrong whoever calls.
    const anonymous = await app.inject({ method: 'GET', url: '/api/v1/identify' })
    expectError(anonymous, 405)
    expect(String(anonymous.headers.allow)).toMatch(/\bPOST\b/)
  })
})

describe('the request body', () => {
  it('a body larger than 64 KiB gets 413', async () => {
    expectError(await postRaw(bodyOfSize(65537), json), 413)
    expectError(await postRaw(bodyOfSize(200_000), json), 413)
  })

  it('a body of exactly 64 KiB is not refused as too large', async () => {
    const response = await postRaw(bodyOfSize(65536), json)
    expect(response.statusCode, response.body).not.toBe(413)
    // Its metadata is beyond 32 KiB, so the metadata rule answers instead.
    expectError(response, 400)
  })

  it('the body limit is configurable', async () => {
    const small = await buildTestApp({ BODY_LIMIT_BYTES: 2048 })
    try {
      const smallSite = await createTestWebsite(small)
      expectError(await postRaw(bodyOfSize(2049), json, small, smallSite.key), 413)
      expectSuccess(await postRaw(bodyOfSize(2048), json, small, smallSite.key))
    } finally {
      await small.close()
    }
  })

  const notJson: Array<{ name: string, payload: () => string | Buffer, headers: Record<string, string> }> = [
    { name: 'text/plain', payload: () => JSON.stringify({ user_id: 'u', datafast_visitor_id: visitorId() }), headers: { 'content-type': 'text/plain' } },
    { name: 'application/x-www-form-urlencoded', payload: () => `user_id=u&datafast_visitor_id=${visitorId()}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } },
    { name: 'application/xml', payload: () => '<user_id>u</user_id>', headers: { 'content-type': 'application/xml' } },
    { name: 'no content type at all', payload: () => Buffer.from(JSON.stringify({ user_id: 'u', datafast_visitor_id: visitorId() })), headers: {} }
  ]
  for (const { name, payload, headers } of notJson) {
    it(`a body that is not application/json gets 415: ${name}`, async () => {
      expectError(await postRaw(payload(), headers), 415)
    })
  }

  it('application/json with a charset parameter is accepted', async () => {
    const text = JSON.stringify({ user_id: 'charset', datafast_visitor_id: visitorId() })
    expectSuccess(await postRaw(text, { 'content-type': 'application/json; charset=utf-8' }))
  })

  it('malformed JSON gets 400', async () => {
    for (const text of ['{"user_id": ', '{user_id: "u"}', '{"user_id":"u",}', '{"a":1}{"b":2}', 'nul']) {
      expectError(await postRaw(text, json), 400)
    }
  })

  it('an empty body with application/json gets 400', async () => {
    expectError(await postRaw('', json), 400)
    expectError(await postRaw(undefined, json), 400)
  })

  it('invalid UTF-8 bytes get 400', async () => {
    const bytes = Buffer.concat([
      Buffer.from('{"user_id":"'),
      Buffer.from([0xff, 0xfe, 0xc3]),
      Buffer.from(`","datafast_visitor_id":"${visitorId()}"}`)
    ])
    expectError(await postRaw(bytes, json), 400)
    const inMetadata = Buffer.concat([
      Buffer.from(`{"user_id":"utf8","datafast_visitor_id":"${visitorId()}","name":"`),
      Buffer.from([0xed, 0xa0, 0x80]),
      Buffer.from('"}')
    ])
    expectError(await postRaw(inMetadata, json), 400)
  })

  it('a JSON array, string, number or null as the body gets 400 naming that it must be an object', async () => {
    for (const text of ['[]', `[{"user_id":"u","datafast_visitor_id":"${visitorId()}"}]`, '"hello"', '42', 'null', 'true']) {
      const message = expectError(await postRaw(text, json), 400)
      expect(message, text).toMatch(/object/i)
    }
  })
})

describe('validation messages name the field and the rule', () => {
  const valid = (): Record<string, unknown> => ({ user_id: 'valid_user', datafast_visitor_id: visitorId() })

  async function expectInvalid (body: Record<string, unknown>, field: string, rule: RegExp): Promise<void> {
    const message = expectError(await identify(app, { auth: site.key, body }), 400)
    expect(message, JSON.stringify(body)).toContain(field)
    expect(message, JSON.stringify(body)).toMatch(rule)
  }

  it('user_id missing', async () => {
    await expectInvalid({ datafast_visitor_id: visitorId() }, 'user_id', /required|missing/i)
  })

  it('user_id a number, boolean, null, array or object is rejected, not coerced', async () => {
    for (const userId of [12345, 0, true, false, null, ['u'], { id: 'u' }]) {
      await expectInvalid({ ...valid(), user_id: userId }, 'user_id', /string/i)
    }
  })

  it('user_id empty or only white space', async () => {
    await expectInvalid({ ...valid(), user_id: '' }, 'user_id', /1 to 255|at least one|empty/i)
    for (const userId of ['   ', '\t', ' \n ']) {
      await expectInvalid({ ...valid(), user_id: userId }, 'user_id', /white ?space|blank|non-whitespace/i)
    }
  })

  it('user_id of 256 characters is refused; 255 are accepted', async () => {
    await expectInvalid({ ...valid(), user_id: 'u'.repeat(256) }, 'user_id', /255/)
    expectSuccess(await identify(app, { auth: site.key, body: { ...valid(), user_id: 'u'.repeat(255) } }))
  })

  it('datafast_visitor_id missing', async () => {
    await expectInvalid({ user_id: 'u' }, 'datafast_visitor_id', /required|missing/i)
  })

  it('datafast_visitor_id that is not a UUID', async () => {
    const uuid = visitorId()
    for (const visitor of ['not-a-uuid', uuid.replaceAll('-', ''), `{${uuid}}`, `${uuid}x`, uuid.slice(1), uuid.replace(/[0-9a-f]$/, 'g'), '', 12345, null]) {
      await expectInvalid({ user_id: 'u', datafast_visitor_id: visitor }, 'datafast_visitor_id', /UUID/i)
    }
  })

  it('an uppercase UUID is accepted and stored lowercase', async () => {
    const uuid = visitorId()
    const upper = await identify(app, { auth: site.key, body: { user_id: 'upper_case', datafast_visitor_id: uuid.toUpperCase() } })
    expectSuccess(upper)
    expect(upper.json().data.action).toBe('created')
    // The lowercase form is the same visitor, already linked: nothing changes.
    const lower = await identify(app, { auth: site.key, body: { user_id: 'upper_case', datafast_visitor_id: uuid } })
    expectSuccess(lower)
    expect(lower.json().data.action).toBe('unchanged')
    expect(lower.json().data.profileId).toBe(upper.json().data.profileId)
  })
})

describe('429 carries Retry-After in the envelope', () => {
  function expect429 (response: LightMyRequestResponse): void {
    expectError(response, 429)
    expect(String(response.headers['retry-after'])).toMatch(/^\d+$|^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/)
  }

  it('a key over its rate limit', async () => {
    const limited = await buildTestApp({ RATE_LIMIT_MAX: 2 })
    try {
      const limitedSite = await createTestWebsite(limited)
      const call = async () => await identify(limited, { auth: limitedSite.key, body: { user_id: 'limited', datafast_visitor_id: visitorId() } })
      expectSuccess(await call())
      expectSuccess(await call())
      expect429(await call())
    } finally {
      await limited.close()
    }
  })

  it('an address over its budget of failed authentications', async () => {
    const throttled = await buildTestApp({ AUTH_FAILURE_MAX: 3 })
    try {
      const unknownKey = `df_${'B'.repeat(43)}`
      for (let i = 0; i < 3; i++) {
        expectError(await identify(throttled, { auth: unknownKey, body: { user_id: 'u', datafast_visitor_id: visitorId() } }), 401)
      }
      expect429(await identify(throttled, { auth: unknownKey, body: { user_id: 'u', datafast_visitor_id: visitorId() } }))
    } finally {
      await throttled.close()
    }
  })
})

describe('the database is down', () => {
  let own: AppOnOwnDatabase
  let outage: App
  let outageSite: TestWebsite

  beforeAll(async () => {
    own = await appOnOwnDatabase()
    outage = own.app
    outageSite = own.site
  })

  afterAll(async () => { await own.close() })

  async function timedIdentify (key: string): Promise<{ response: LightMyRequestResponse, elapsed: number }> {
    const started = Date.now()
    const response = await identify(outage, { auth: key, body: { user_id: 'outage_user', datafast_visitor_id: visitorId() } })
    return { response, elapsed: Date.now() - started }
  }

  function expect503 ({ response, elapsed }: { response: LightMyRequestResponse, elapsed: number }): void {
    expectError(response, 503)
    const retryAfter = String(response.headers['retry-after'])
    expect(retryAfter).toMatch(/^\d+$|^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/)
    expect(elapsed).toBeLessThan(8000)
    // Neither a driver message nor an address reaches the caller.
    expect(response.json().error.message).not.toMatch(/mongo|ECONNREFUSED|127\.0\.0\.1|topology|socket|postgres|connecting|os error/i)
  }

  it.each<[string, DatabasePart]>([
    ['the gateway and PostgreSQL', 'all'],
    ['PostgreSQL alone (the gateway up)', 'postgres'],
    ['the gateway alone', 'gateway']
  ])('with %s stopped: 503 with Retry-After within a few seconds, then recovers by itself', async (_what, part) => {
    expectSuccess(await identify(outage, { auth: outageSite.key, body: { user_id: 'before', datafast_visitor_id: visitorId() } }))

    await own.database.stop('SIGTERM', part)

    // The first call after the server died, then calls that must wait for server selection.
    expect503(await timedIdentify(outageSite.key))
    expect503(await timedIdentify(outageSite.key))
    // A caller whose key cannot be checked is not told it is unknown: the database is.
    expect503(await timedIdentify(`df_${'A'.repeat(43)}`))
    // What needs no database still answers.
    expectError(await identify(outage, { body: {} }), 401)

    await own.database.start()

    const deadline = Date.now() + 15_000
    let last: LightMyRequestResponse | undefined
    while (Date.now() < deadline) {
      last = await identify(outage, { auth: outageSite.key, body: { user_id: 'after', datafast_visitor_id: visitorId() } })
      if (last.statusCode === 200) break
      // Until it is back, the database is only unavailable, never a 500.
      expectError(last, 503)
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    expect(last).toBeDefined()
    expectSuccess(last!)
  }, 60_000)
})

/** The code under which DocumentDB's gateway passes on a PostgreSQL error it has no MongoDB code for: the SQLSTATE, six bits a character. */
function gatewayCodeOf (sqlState: string): number {
  let code = 0
  for (let index = 0; index < sqlState.length; index++) code += ((sqlState.charCodeAt(index) - 0x30) & 0x3f) << (6 * index)
  return code
}

describe('which database errors mean an outage (a 503), through DocumentDB\'s gateway and on MongoDB', () => {
  const internalError = (errmsg: string) => new MongoServerError({ ok: 0, code: 1, codeName: 'Internal Error', errmsg })
  const passedOn = (sqlState: string, errmsg: string) => new MongoServerError({ ok: 0, code: gatewayCodeOf(sqlState), codeName: 'DocumentDB error.', errmsg })

  it('reads the gateway\'s codes as it writes them', () => {
    // Seen from the gateway while PostgreSQL started up.
    expect(gatewayCodeOf('57P03')).toBe(50463173)
  })

  // Each message as the gateway sent it during an outage of PostgreSQL (docs/reliability.md).
  it.each([
    ['PostgreSQL killed: its socket refuses', internalError('error connecting to server: Connection refused (os error 111)')],
    ['PostgreSQL shut down: its socket is gone', internalError('error connecting to server: No such file or directory (os error 2)')],
    ['PostgreSQL shut down under a query', internalError('error communicating with the server: Connection reset by peer (os error 104)')],
    ['the gateway\'s connection to PostgreSQL closed', internalError('connection closed')],
    ['PostgreSQL starting up (57P03)', passedOn('57P03', 'the database system is starting up')],
    ['PostgreSQL recovering (57P03)', passedOn('57P03', 'the database system is not yet accepting connections')],
    ['PostgreSQL shutting down (57P03)', passedOn('57P03', 'the database system is shutting down')],
    ['a backend ended by a shutdown (57P01)', passedOn('57P01', 'terminating connection due to administrator command')],
    ['a backend ended by another\'s crash (57P02)', passedOn('57P02', 'terminating connection because of crash of another server process')],
    ['a connection failure (08006)', passedOn('08006', 'server closed the connection unexpectedly')]
  ])('an outage: %s', (_what, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true)
  })

  it.each([
    ['MongoDB\'s own InternalError', new MongoServerError({ ok: 0, code: 1, codeName: 'InternalError', errmsg: 'unexpected internal state' })],
    ['a duplicate key', new MongoServerError({ ok: 0, code: 11000, codeName: 'DuplicateKey', errmsg: 'Duplicate key violation on the requested collection: Index \'_id_\'' })],
    ['another PostgreSQL error passed on (42883, undefined function)', passedOn('42883', 'function does not exist')],
    ['a MongoDB code that would read as a connection SQLSTATE', new MongoServerError({ ok: 0, code: gatewayCodeOf('08000'), codeName: 'Location512', errmsg: 'not an outage' })]
  ])('not an outage: %s', (_what, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false)
  })
})

describe('405 on every known path', () => {
  it('answers another method on /healthz with 405, Allow and the envelope, even with an unparsable body', async () => {
    const app = await buildTestApp()
    try {
      for (const method of ['POST', 'DELETE'] as const) {
        const response = await app.inject({ method, url: '/healthz', headers: { 'content-type': 'text/plain' }, payload: 'x' })
        expect(response.statusCode).toBe(405)
        expect(response.headers.allow).toBe('GET, HEAD')
        expect(response.json()).toEqual({ status: 'error', error: { code: 405, message: expect.stringContaining('GET, HEAD') } })
      }
    } finally {
      await app.close()
    }
  })
})

describe('errors raised outside the routes keep the envelope', () => {
  it('answers a URL that cannot be decoded with a 400 envelope', async () => {
    const app = await buildTestApp()
    try {
      for (const url of ['/api/v1/identify%', '/nope/%zz']) {
        const response = await app.inject({ method: 'GET', url })
        expect(response.statusCode, url).toBe(400)
        expect(response.json()).toEqual({ status: 'error', error: { code: 400, message: expect.any(String) } })
      }
    } finally {
      await app.close()
    }
  })

  it('answers a plugin\'s 4xx (an unsatisfiable range on a docs asset) with its status, not a 500', async () => {
    const app = await buildTestApp()
    try {
      const response = await app.inject({ method: 'GET', url: '/docs/static/swagger-ui.css', headers: { range: 'bytes=99999999-' } })
      expect(response.statusCode).toBe(416)
      expect(response.json()).toEqual({ status: 'error', error: { code: 416, message: 'Range Not Satisfiable' } })
    } finally {
      await app.close()
    }
  })
})
