import { request as httpRequest } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import type { LightMyRequestResponse } from 'fastify'
import { ObjectId } from 'mongodb'
import { afterAll, describe, expect, it } from 'vitest'
import type { App } from '../src/app.js'
import { buildTestApp, createTestToken, createTestWebsite, expectError, snapshot, visitorId } from './helper.js'

/*
 * Hostile and malformed calls of POST /api/v1/identify. Every case checks the
 * status docs/api.md documents, the one error envelope, and that nothing at
 * all changed in the database: the service checks everything before it writes
 * anything (docs/api.md#identify-order-of-checks).
 */

const app = await buildTestApp()
/** The body limit raised, so that the metadata rules answer instead of the 413. */
const raised = await buildTestApp({ BODY_LIMIT_BYTES: 2_000_000 })
afterAll(async () => {
  await app.close()
  await raised.close()
})

const site = await createTestWebsite(app)
const raisedSite = await createTestWebsite(raised)

/** A profile that exists before every case, so that a partial write (a merge, a new link) would show. */
const SEEDED_USER = 'seeded_user'
const seededVisitor = visitorId()
for (const [target, owner] of [[app, site], [raised, raisedSite]] as const) {
  const seeded = await post(target, { key: owner.key, payload: { user_id: SEEDED_USER, datafast_visitor_id: seededVisitor, name: 'Ada', plan: 'pro' } })
  if (seeded.statusCode !== 200) throw new Error(`seeding failed: ${seeded.body}`)
}
/** A website of another account, for the cases where a caller reaches for a website not its own. */
const other = await createTestWebsite(app)

type Reply = LightMyRequestResponse

/** POST /api/v1/identify through inject, with a raw payload when it is a string or a buffer. */
async function post (target: App, options: {
  key?: string
  url?: string
  payload?: string | Buffer | Readable | Record<string, unknown>
  headers?: Record<string, string>
}): Promise<Reply> {
  const isObject = options.payload !== undefined && !(typeof options.payload === 'string' || Buffer.isBuffer(options.payload) || options.payload instanceof Readable)
  return await target.inject({
    method: 'POST',
    url: options.url ?? '/api/v1/identify',
    headers: {
      ...(options.key === undefined ? {} : { authorization: `Bearer ${options.key}` }),
      ...(options.payload === undefined || isObject ? {} : { 'content-type': 'application/json' }),
      ...options.headers
    },
    ...(options.payload === undefined ? {} : { payload: options.payload as string })
  })
}

/** Runs `call` and asserts that no document of any collection was added, changed or removed. */
async function unchanged<T> (target: App, call: () => Promise<T>): Promise<T> {
  const before = await snapshot(target)
  const result = await call()
  expect(await snapshot(target), 'the database changed').toStrictEqual(before)
  return result
}

/** Sends the call, expects the status in the envelope and an untouched database; returns the message. */
async function refused (target: App, status: number, options: Parameters<typeof post>[1]): Promise<string> {
  return await unchanged(target, async () => expectError(await post(target, options), status))
}

/** A JSON body text for the seeded user with a fresh visitor and the given raw JSON members. */
function rawBody (members: string, userId = SEEDED_USER): string {
  return `{"user_id":${JSON.stringify(userId)},"datafast_visitor_id":"${visitorId()}"${members === '' ? '' : `,${members}`}}`
}

describe('oversized and deeply nested bodies', () => {
  it('a 10 MB body gets 413, whether its length is announced or streamed', async () => {
    const big = rawBody(`"pad":"${'x'.repeat(10 * 1024 * 1024)}"`)
    const message = await refused(app, 413, { key: site.key, payload: big })
    expect(message).toMatch(/65536|64 KiB/)
    // Streamed without a Content-Length: the limit is applied while reading.
    await refused(app, 413, { key: site.key, payload: Readable.from([Buffer.from(big)]) })
  })

  const hugeArray = (): string => rawBody(`"list":[${Array.from({ length: 100_000 }, () => '0').join(',')}]`)

  it('a 100,000-element array as a metadata value gets 413 at the default body limit', async () => {
    const payload = hugeArray()
    expect(Buffer.byteLength(payload)).toBeGreaterThan(65536)
    await refused(app, 413, { key: site.key, payload })
  })

  it('the same array with the body limit raised to 2 MB gets a 400 naming the 32 KiB metadata limit', async () => {
    const message = await refused(raised, 400, { key: raisedSite.key, payload: hugeArray() })
    expect(message).toMatch(/metadata/i)
    expect(message).toMatch(/32768|32 KiB|METADATA_MAX_BYTES/)
  })

  const nestedObjects = (depth: number): string => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`
  /** Objects and arrays alternating: [{"a":[{"a":…}]}]; no array sits directly inside an array. */
  const nestedMixed = (depth: number): string => `${'[{"a":'.repeat(depth)}1${'}]'.repeat(depth)}`

  it('metadata nested 1,000 deep gets a 400 naming the depth limit', async () => {
    for (const value of [nestedObjects(1000), nestedMixed(500)]) {
      const message = await refused(app, 400, { key: site.key, payload: rawBody(`"deep":${value}`) })
      expect(message).toMatch(/deep|depth/i)
    }
  })

  it('metadata nested 10,000 deep (60 KB, within the body limit) gets a 400, not a 500', async () => {
    const payload = rawBody(`"deep":${nestedObjects(10_000)}`)
    expect(Buffer.byteLength(payload)).toBeLessThan(65536)
    const message = await refused(app, 400, { key: site.key, payload })
    expect(message).toMatch(/deep|depth/i)
  })

  it('metadata nested 100,000 deep with the body limit raised gets a 400, not a 500', async () => {
    for (const value of [nestedObjects(100_000), nestedMixed(50_000)]) {
      const message = await refused(raised, 400, { key: raisedSite.key, payload: rawBody(`"deep":${value}`) })
      expect(message).toMatch(/deep|depth/i)
    }
  })

  const manyKeys = (): string => rawBody(Array.from({ length: 10_000 }, (_, index) => `"k${String(index)}":0`).join(','))

  it('10,000 metadata fields get 413 at the default body limit', async () => {
    const payload = manyKeys()
    expect(Buffer.byteLength(payload)).toBeGreaterThan(65536)
    await refused(app, 413, { key: site.key, payload })
  })

  it('10,000 metadata fields with the body limit raised get a 400 naming the field limit', async () => {
    const message = await refused(raised, 400, { key: raisedSite.key, payload: manyKeys() })
    expect(message).toMatch(/fields/i)
    expect(message).toMatch(/\b100\b|METADATA_MAX_FIELDS/)
  })
})

/** Where a key can sit: each function wraps the raw JSON member `"key":1` into a metadata field. */
const placements: Array<{ where: string, wrap: (member: string) => string }> = [
  { where: 'top level', wrap: (member) => member },
  { where: 'in a nested object', wrap: (member) => `"m":{${member}}` },
  { where: 'three objects deep', wrap: (member) => `"m":{"n":{"o":{${member}}}}` },
  { where: 'in an object inside an array', wrap: (member) => `"m":[{${member}}]` },
  { where: 'in an object inside an object inside an array', wrap: (member) => `"m":[1,"x",{"n":{${member}}}]` }
]

describe('keys MongoDB cannot store or that could pollute prototypes', () => {
  const badKeys = ['$where', '$', '$set', 'a.b', '.', 'a.', '\u0000', 'a\u0000b']
  for (const { where, wrap } of placements) {
    it(`keys starting with $, holding "." or holding NUL get 400: ${where}`, async () => {
      for (const key of badKeys) {
        const message = await refused(app, 400, { key: site.key, payload: rawBody(wrap(`${JSON.stringify(key)}:1`)) })
        expect(message, JSON.stringify(key)).toMatch(/\$|"\."|NUL/)
      }
    })
  }

  for (const { where, wrap } of placements) {
    it(`__proto__, constructor and prototype get 400: ${where}`, async () => {
      for (const key of ['__proto__', 'constructor', 'prototype']) {
        for (const value of ['1', '{"polluted":1}', '{"prototype":{"polluted":1}}', 'null']) {
          const message = await refused(app, 400, { key: site.key, payload: rawBody(wrap(`"${key}":${value}`)) })
          expect(message, `${key}: ${value}`).toContain(key)
        }
      }
    })
  }

  it('a __proto__ key for a new user creates nothing, and an empty-object __proto__ is refused too', async () => {
    await refused(app, 400, { key: site.key, payload: rawBody('"__proto__":{}', 'proto_user') })
    await refused(app, 400, { key: site.key, payload: rawBody('"constructor":{}', 'proto_user') })
    expect(await app.repositories.profiles.findProfile(site.websiteId, 'proto_user')).toBeNull()
  })

  it('sending {"__proto__":{"polluted":1}} leaves Object.prototype untouched', async () => {
    const names = Object.getOwnPropertyNames(Object.prototype).sort()
    const payloads = [
      rawBody('"__proto__":{"polluted":1}'),
      rawBody('"constructor":{"prototype":{"polluted":1}}'),
      rawBody('"m":{"__proto__":{"polluted":1}}'),
      rawBody('"m":[{"__proto__":{"polluted":1}}]'),
      // The reserved names in the required fields' place, before any metadata rule.
      `{"__proto__":{"polluted":1,"user_id":"x"},"user_id":"${SEEDED_USER}","datafast_visitor_id":"${visitorId()}"}`
    ]
    for (const payload of payloads) await refused(app, 400, { key: site.key, payload })
    // A body that is only a __proto__ member lacks the required fields: also a 400, also nothing polluted.
    await refused(app, 400, { key: site.key, payload: '{"__proto__":{"polluted":1}}' })
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toStrictEqual(names)
    expect(Object.getPrototypeOf({})).toBe(Object.prototype)
  })
})

describe('bodies that are not one JSON object', () => {
  it('invalid UTF-8 bytes get 400, in a value, a key and user_id', async () => {
    const invalid = [[0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xff]]
    for (const bytes of invalid) {
      const inValue = Buffer.concat([Buffer.from(rawBody('"name":"').slice(0, -1)), Buffer.from(bytes), Buffer.from('"}')])
      const inKey = Buffer.concat([Buffer.from(rawBody('"').slice(0, -1)), Buffer.from(bytes), Buffer.from('":1}')])
      const inUserId = Buffer.concat([Buffer.from('{"user_id":"'), Buffer.from(bytes), Buffer.from(`","datafast_visitor_id":"${visitorId()}"}`)])
      for (const payload of [inValue, inKey, inUserId]) {
        const message = await refused(app, 400, { key: site.key, payload })
        expect(message, bytes.join(' ')).toMatch(/UTF-8/)
      }
    }
  })

  it('a JSON array, string, null, number or boolean as the whole body gets 400', async () => {
    const texts = ['[]', `[${rawBody('')}]`, '"hello"', JSON.stringify(rawBody('')), 'null', '0', '42', '-1.5e300', 'true', 'false']
    for (const payload of texts) {
      const message = await refused(app, 400, { key: site.key, payload })
      expect(message, payload).toMatch(/object/i)
    }
  })

  it('no body at all (no payload, no Content-Type) gets 400: a missing body is a bad request', async () => {
    // Observed: Fastify runs no body parser without a Content-Type and a body,
    // so the schema refuses the missing body as "not a JSON object" (400, not 415).
    const message = await refused(app, 400, { key: site.key })
    expect(message).toMatch(/body/i)
    // An explicit Content-Length of 0, with and without a JSON content type.
    await refused(app, 400, { key: site.key, headers: { 'content-length': '0' } })
    await refused(app, 400, { key: site.key, payload: '' })
  })

  it('a body that is not application/json gets 415', async () => {
    const text = rawBody('')
    const boundary = '----abuse'
    const multipart = `--${boundary}\r\nContent-Disposition: form-data; name="user_id"\r\n\r\n${SEEDED_USER}\r\n--${boundary}--\r\n`
    const cases: Array<[string, string]> = [
      ['text/plain', text],
      ['text/plain; charset=utf-8', text],
      ['application/x-www-form-urlencoded', `user_id=${SEEDED_USER}&datafast_visitor_id=${visitorId()}`],
      [`multipart/form-data; boundary=${boundary}`, multipart],
      ['application/octet-stream', text],
      ['text/json', text]
    ]
    for (const [contentType, payload] of cases) {
      const message = await refused(app, 415, { key: site.key, payload, headers: { 'content-type': contentType } })
      expect(message, contentType).toMatch(/application\/json/)
    }
  })
})

/** The app listening on 127.0.0.1, started once for the cases that need a real socket. */
let address: AddressInfo | undefined
async function listening (): Promise<AddressInfo> {
  if (address === undefined) {
    await app.listen({ host: '127.0.0.1', port: 0 })
    address = app.server.address() as AddressInfo
  }
  return address
}

/** One HTTP/1.1 request over a real socket; resolves with the status and the body. */
async function realRequest (options: { path: string, method: string, headers: Record<string, string>, body?: string }): Promise<{ status: number, body: string }> {
  const { port } = await listening()
  return await new Promise((resolve, reject) => {
    const outgoing = httpRequest({ host: '127.0.0.1', port, path: options.path, method: options.method, headers: options.headers, agent: false }, (incoming) => {
      let body = ''
      incoming.setEncoding('utf8')
      incoming.on('data', (chunk: string) => { body += chunk })
      incoming.on('end', () => { resolve({ status: incoming.statusCode ?? 0, body }) })
      incoming.on('error', reject)
    })
    outgoing.on('error', reject)
    outgoing.end(options.body)
  })
}

async function expectStillServing (): Promise<void> {
  const body = JSON.stringify({ user_id: 'after_abuse', datafast_visitor_id: visitorId() })
  const after = await realRequest({
    path: '/api/v1/identify',
    method: 'POST',
    headers: { authorization: `Bearer ${site.key}`, 'content-type': 'application/json' },
    body
  })
  expect(after.status, after.body).toBe(200)
}

describe('abuse over a real socket', () => {
  it('a 20 KB header gets 431, and the server keeps serving', async () => {
    await unchanged(app, async () => {
      const reply = await realRequest({
        path: '/api/v1/identify',
        method: 'POST',
        headers: { authorization: `Bearer ${site.key}`, 'content-type': 'application/json', 'x-padding': 'a'.repeat(20_000) },
        body: rawBody('')
      })
      expect(reply.status, reply.body).toBe(431)
      expect(JSON.parse(reply.body)).toEqual({ status: 'error', error: { code: 431, message: expect.any(String) } })
    })
    await expectStillServing()
  })

  // The server must drop a client that never finishes its headers (slowloris)
  // by itself. Node closes such a connection after headersTimeout (60 s by
  // default, checked every 30 s); the service should configure a bound.
  const SLOW_CLIENT_BOUND_MS = 40_000
  it('a client sending its headers one byte every 50 ms is disconnected by the server within 40 s', async () => {
    const { port } = await listening()
    const started = Date.now()
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => { /* the server may reset the connection */ })
    let received = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => { received += chunk })
    const head = `POST /api/v1/identify HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${site.key}\r\nContent-Type: application/json\r\nX-Slow: `
    let sent = 0
    const drip = setInterval(() => {
      if (socket.destroyed || !socket.writable) return
      socket.write(sent < head.length ? head.charAt(sent) : 'a')
      sent++
    }, 50)
    try {
      const closedAfter = await unchanged(app, async () => await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => { resolve(null) }, SLOW_CLIENT_BOUND_MS)
        socket.on('close', () => {
          clearTimeout(timer)
          resolve(Date.now() - started)
        })
      }))
      expect(closedAfter, `the server still held the connection after ${String(SLOW_CLIENT_BOUND_MS)} ms (${String(sent)} bytes sent)`).not.toBeNull()
      expect(closedAfter).toBeLessThanOrEqual(SLOW_CLIENT_BOUND_MS)
      // The server answers 408 in the error envelope before it closes.
      expect(received).toMatch(/^HTTP\/1\.1 408 /)
      expect(received).toContain('{"status":"error","error":{"code":408,')
    } finally {
      clearInterval(drip)
      socket.destroy()
    }
    await expectStillServing()
  }, SLOW_CLIENT_BOUND_MS + 20_000)
})

describe('websiteId with query-operator syntax', () => {
  const profilesOn = async (websiteId: string): Promise<number> => await app.mongo.db.collection('profiles')
    .countDocuments({ websiteId: new ObjectId(websiteId) })

  const queries = (): string[] => [
    'websiteId[$ne]=x',
    `websiteId[$ne]=${other.websiteId}`,
    'websiteId[$gt]=',
    'websiteId%5B%24ne%5D=x',
    'websiteId[]=x',
    `websiteId[]=${site.websiteId}`,
    'websiteId=a&websiteId=b',
    `websiteId=${site.websiteId}&websiteId=${other.websiteId}`,
    `websiteId=${other.websiteId}&websiteId=${site.websiteId}`,
    'websiteId={"$ne":"x"}',
    'websiteId=%7B%22%24ne%22%3A%22x%22%7D'
  ]

  it('with a df_ key: its own website (the parameter ignored) or a 400, never another website, never a 500', async () => {
    const otherProfiles = await profilesOn(other.websiteId)
    let index = 0
    for (const query of queries()) {
      const userId = `operator_${String(index++)}`
      const before = await snapshot(app)
      const reply = await post(app, { key: site.key, url: `/api/v1/identify?${query}`, payload: { user_id: userId, datafast_visitor_id: visitorId() } })
      expect([200, 400], `${query}: ${reply.body}`).toContain(reply.statusCode)
      if (reply.statusCode === 200) {
        expect(await app.repositories.profiles.findProfile(site.websiteId, userId), query).not.toBeNull()
      } else {
        expectError(reply, 400)
        expect(await snapshot(app), query).toStrictEqual(before)
      }
      expect(await app.repositories.profiles.findProfile(other.websiteId, userId), query).toBeNull()
      expect(await profilesOn(other.websiteId), query).toBe(otherProfiles)
    }
  })

  it('with a dft_ token: 400 naming websiteId, nothing written', async () => {
    const { token } = await createTestToken(app, { accountId: site.accountId })
    const { token: otherToken } = await createTestToken(app, { accountId: other.accountId })
    for (const query of queries()) {
      for (const key of [token, otherToken]) {
        const message = await refused(app, 400, { key, url: `/api/v1/identify?${query}`, payload: rawBody('') })
        expect(message, query).toMatch(/websiteId/)
      }
    }
  })
})

describe('credentials of the wrong party', () => {
  const stranger = other

  it('a key of another website with websiteId of this one gets 403', async () => {
    await refused(app, 403, { key: stranger.key, url: `/api/v1/identify?websiteId=${site.websiteId}`, payload: rawBody('"name":"Mallory"') })
    await refused(app, 403, { key: stranger.key, url: `/api/v1/identify?websiteId=${site.websiteId.toUpperCase()}`, payload: rawBody('"name":"Mallory"') })
  })

  it('a token of another account gets 404 for this account\'s website', async () => {
    const { token } = await createTestToken(app, { accountId: stranger.accountId, permissions: ['*'] })
    await refused(app, 404, { key: token, url: `/api/v1/identify?websiteId=${site.websiteId}`, payload: rawBody('"name":"Mallory"') })
    // Even when the stranger's token lists this website in its allow-list.
    const { token: listed } = await createTestToken(app, { accountId: stranger.accountId, websiteIds: [site.websiteId] })
    await refused(app, 404, { key: listed, url: `/api/v1/identify?websiteId=${site.websiteId}`, payload: rawBody('"name":"Mallory"') })
  })

  it('a revoked key and a revoked token get 401', async () => {
    const victim = await createTestWebsite(app, { accountId: site.accountId })
    const { id: tokenId, token } = await createTestToken(app, { accountId: site.accountId })
    expect(await app.repositories.credentials.revokeWebsiteKey(victim.keyId)).toBe(true)
    expect(await app.repositories.credentials.revokeAccountToken(tokenId)).toBe(true)
    await refused(app, 401, { key: victim.key, payload: rawBody('"name":"Mallory"') })
    await refused(app, 401, { key: token, url: `/api/v1/identify?websiteId=${site.websiteId}`, payload: rawBody('"name":"Mallory"') })
  })

  it('an expired token gets 401', async () => {
    const { token } = await createTestToken(app, { accountId: site.accountId, expiresAt: new Date(Date.now() - 1000) })
    await refused(app, 401, { key: token, url: `/api/v1/identify?websiteId=${site.websiteId}`, payload: rawBody('"name":"Mallory"') })
  })
})

describe('NUL and unpaired surrogates (a deliberate rule: docs/api.md#nul-and-unpaired-surrogates)', () => {
  const escapes = ['\\u0000', 'a\\u0000', '\\ud800', '\\udbff', '\\udc00', 'a\\ud800b', '\\udc00\\ud800', '\\ud83d']

  it('in a metadata value, nested or in an array: 400', async () => {
    for (const text of escapes) {
      for (const member of [`"name":"${text}"`, `"m":{"n":"${text}"}`, `"m":["ok","${text}"]`, `"m":[{"n":{"o":"${text}"}}]`]) {
        const message = await refused(app, 400, { key: site.key, payload: rawBody(member) })
        expect(message, member).toMatch(/NUL|surrogate/i)
      }
    }
  })

  it('in a metadata key: 400', async () => {
    for (const text of escapes) {
      for (const member of [`"${text}":1`, `"m":{"${text}":1}`, `"m":[{"${text}":1}]`]) {
        await refused(app, 400, { key: site.key, payload: rawBody(member) })
      }
    }
  })

  it('in user_id: 400, for a new user and next to an existing one', async () => {
    for (const text of escapes) {
      for (const userId of [text, `${SEEDED_USER}${text}`]) {
        const payload = `{"user_id":"${userId}","datafast_visitor_id":"${visitorId()}","name":"Mallory"}`
        const message = await refused(app, 400, { key: site.key, payload })
        expect(message, userId).toMatch(/user_id/)
      }
    }
  })

  it('a paired surrogate (an emoji) written as escapes is accepted: the rule is about unpaired ones only', async () => {
    const reply = await post(app, { key: site.key, payload: rawBody('"emoji":"\\ud83d\\ude00"', 'emoji_user') })
    expect(reply.statusCode, reply.body).toBe(200)
    const profile = await app.repositories.profiles.findProfile(site.websiteId, 'emoji_user')
    expect(profile?.metadata.emoji).toBe('\u{1F600}')
  })
})
