import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { deflateSync, gzipSync } from 'node:zlib'
import { afterAll, describe, expect, it } from 'vitest'
import { gunzipBody } from '../src/plugins/app/json-body.js'
import { buildTestApp, createTestWebsite, expectError, expectSuccess, snapshot, visitorId } from './helper.js'

/** docs/api.md#identify-content-encoding: gzip bodies, the limit on what they decode to, and every other coding refused. */

const app = await buildTestApp()
afterAll(async () => { await app.close() })
const site = await createTestWebsite(app)
const LIMIT = app.config.BODY_LIMIT_BYTES

/** POST /api/v1/identify with a raw payload in JSON and these extra headers. */
async function post (payload: Buffer | string | Readable, headers: Record<string, string>) {
  return await app.inject({
    method: 'POST',
    url: '/api/v1/identify',
    headers: { authorization: `Bearer ${site.key}`, 'content-type': 'application/json', ...headers },
    payload
  })
}

const gzip = { 'content-encoding': 'gzip' }

/** An identify body of exactly `bytes` bytes, padded with an ASCII metadata field. */
function bodyOfSize (bytes: number, userId = 'padded'): string {
  const base = { user_id: userId, datafast_visitor_id: visitorId(), pad: '' }
  const text = JSON.stringify({ ...base, pad: 'x'.repeat(bytes - Buffer.byteLength(JSON.stringify(base))) })
  expect(Buffer.byteLength(text)).toBe(bytes)
  return text
}

/** Concatenated gzip members of 1 MB of zeros each (one gzip stream to a decoder): `megabytes` MB that compress about a thousandfold. */
function gzipBomb (megabytes: number): Buffer {
  return Buffer.concat(Array.from({ length: megabytes }, () => zerosMember))
}
const zerosMember = gzipSync(Buffer.alloc(1_000_000))

/** A stream of `bytes` in 1 KiB chunks that counts how many of them were read. */
function countingSource (bytes: Buffer): Readable & { pulled: number } {
  let offset = 0
  const source = Object.assign(new Readable({
    read () {
      const chunk = bytes.subarray(offset, offset + 1024)
      offset += chunk.length
      source.pulled = offset
      this.push(chunk.length === 0 ? null : chunk)
    }
  }), { pulled: 0 })
  return source
}

describe('gzip bodies', () => {
  it('a gzip body is stored exactly as the same body sent plain, with gzip, x-gzip or GZIP', async () => {
    for (const coding of ['gzip', 'x-gzip', ' GZIP ']) {
      const userId = `gzip_${coding.trim()}`
      const body = { user_id: userId, datafast_visitor_id: visitorId(), plan: 'pro', name: 'Ada Lovelace ✓' }
      const response = await post(gzipSync(JSON.stringify(body)), { 'content-encoding': coding })
      expectSuccess(response)
      expect(response.json<{ data: { action: string } }>().data.action).toBe('created')
      const profile = await app.repositories.profiles.findProfile(site.websiteId, userId)
      expect(profile?.metadata).toStrictEqual({ plan: 'pro', name: 'Ada Lovelace ✓' })
      expect(profile?.visitorIds).toStrictEqual([body.datafast_visitor_id])
    }
  })

  it('identity is the same as no Content-Encoding', async () => {
    expectSuccess(await post(JSON.stringify({ user_id: 'identity', datafast_visitor_id: visitorId() }), { 'content-encoding': 'identity' }))
  })

  it('the body limit applies to the decoded body: one byte over it gets 413 naming the limit, exactly at it does not', async () => {
    const over = gzipSync(bodyOfSize(LIMIT + 1))
    expect(over.length).toBeLessThan(LIMIT / 10)
    const message = expectError(await post(over, gzip), 413)
    expect(message).toBe(`The request body is larger than ${LIMIT} bytes`)
    const at = await post(gzipSync(bodyOfSize(LIMIT)), gzip)
    // Its metadata is beyond METADATA_MAX_BYTES, so the metadata rule answers instead.
    expectError(at, 400)
  })

  it('a gzip bomb (50 MB of zeros in 50 KB) gets 413, announced or streamed, and nothing is stored', async () => {
    const before = await snapshot(app)
    const bomb = gzipBomb(50)
    expect(bomb.length).toBeLessThan(LIMIT)
    expectError(await post(bomb, gzip), 413)
    expectError(await post(Readable.from([bomb]), gzip), 413)
    expect(await snapshot(app)).toStrictEqual(before)
  })

  it('bytes that are not gzip, or a truncated gzip body, get 400 naming gzip', async () => {
    const text = JSON.stringify({ user_id: 'broken', datafast_visitor_id: visitorId() })
    const whole = gzipSync(text)
    for (const payload of [Buffer.from(text), whole.subarray(0, whole.length - 10), Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xff, 0xff])]) {
      expect(expectError(await post(payload, gzip), 400)).toBe('The request body is not valid gzip')
    }
  })
})

describe('other content codings', () => {
  it('deflate, br, compress, an unknown coding and two codings get 415, even with valid bytes for them', async () => {
    const text = JSON.stringify({ user_id: 'coded', datafast_visitor_id: visitorId() })
    const cases: Array<[string, Buffer]> = [
      ['deflate', deflateSync(text)], ['br', Buffer.from(text)], ['compress', Buffer.from(text)],
      ['x-foo', Buffer.from(text)], ['gzip, gzip', gzipSync(gzipSync(text))], ['gzip, identity', gzipSync(text)]
    ]
    for (const [coding, payload] of cases) {
      expect(expectError(await post(payload, { 'content-encoding': coding }), 415), coding).toBe('Content-Encoding must be gzip or none')
    }
  })

  it('the rate limit answers before the coding is refused, as before every body check', async () => {
    const limited = await buildTestApp({ RATE_LIMIT_MAX: 1 })
    try {
      const { key } = await createTestWebsite(limited)
      const call = async () => await limited.inject({
        method: 'POST',
        url: '/api/v1/identify',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-encoding': 'br' },
        payload: '{}'
      })
      expectError(await call(), 415)
      expectError(await call(), 429)
    } finally {
      await limited.close()
    }
  })
})

/** Everything `body` gives until it ends, or the error that ended it. */
async function drain (body: Readable): Promise<{ decoded: Buffer, error: { statusCode?: number } | null }> {
  const chunks: Buffer[] = []
  body.on('data', (chunk: Buffer) => { chunks.push(chunk) })
  const error = await new Promise<{ statusCode?: number } | null>((resolve) => {
    body.on('error', resolve)
    body.on('end', () => { resolve(null) })
  })
  return { decoded: Buffer.concat(chunks), error }
}

describe('the decoder', () => {
  it('reads nothing before it is read, then decodes the whole body', async () => {
    const text = JSON.stringify({ user_id: 'lazy', pad: 'y'.repeat(50_000) })
    const source = countingSource(gzipSync(text))
    const body = gunzipBody(source, 65_536)
    await new Promise((resolve) => setImmediate(resolve))
    expect(source.pulled).toBe(0)
    const { decoded, error } = await drain(body)
    expect(error).toBeNull()
    expect(decoded.toString()).toBe(text)
    expect(body.receivedEncodedLength).toBe(gzipSync(text).length)
  })

  it('stops reading a bomb at the limit: 1 GB of zeros in 1 MB is refused after a few KB', async () => {
    const bomb = gzipBomb(1000)
    const source = countingSource(bomb)
    const { decoded, error } = await drain(gunzipBody(source, 65_536))
    expect(error?.statusCode).toBe(413)
    await new Promise((resolve) => setImmediate(resolve))
    expect(decoded.length).toBeLessThanOrEqual(65_536)
    expect(source.pulled).toBeLessThan(64 * 1024)
  })
})

describe('over a real socket', () => {
  it('a gzip bomb gets 413 in the envelope, and a gzip identify on a new connection succeeds', async () => {
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as AddressInfo
    const send = async (payload: Buffer) => await new Promise<{ status: number, body: string }>((resolve, reject) => {
      const headers = { authorization: `Bearer ${site.key}`, 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': String(payload.length) }
      const outgoing = httpRequest({ host: '127.0.0.1', port, path: '/api/v1/identify', method: 'POST', headers, agent: false }, (incoming) => {
        let body = ''
        incoming.setEncoding('utf8')
        incoming.on('data', (chunk: string) => { body += chunk })
        incoming.on('end', () => { resolve({ status: incoming.statusCode ?? 0, body }) })
      })
      // The server may close the connection before it has read the whole bomb.
      outgoing.on('error', reject)
      outgoing.end(payload)
    })
    const refused = await send(gzipBomb(50))
    expect(refused.status).toBe(413)
    expect(JSON.parse(refused.body)).toStrictEqual({ status: 'error', error: { code: 413, message: `The request body is larger than ${LIMIT} bytes` } })
    const accepted = await send(gzipSync(JSON.stringify({ user_id: 'socket', datafast_visitor_id: visitorId() })))
    expect(accepted.status, accepted.body).toBe(200)
  })
})
