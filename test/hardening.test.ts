import type { LightMyRequestResponse } from 'fastify'
import { afterAll, describe, expect, it } from 'vitest'
import { findDuplicateKey } from '../src/plugins/app/json-body.js'
import { buildTestApp, createTestWebsite, expectError, expectSuccess, visitorId } from './helper.js'

/**
 * Issue 8's hardening: a body whose keys repeat is refused (what the service
 * reads must be what a proxy or log in front reads), and every answer carries
 * protective headers, with a Content-Security-Policy the docs page runs under.
 */

const app = await buildTestApp()
afterAll(async () => { await app.close() })
const site = await createTestWebsite(app)

async function postText (text: string): Promise<LightMyRequestResponse> {
  return await app.inject({
    method: 'POST',
    url: '/api/v1/identify',
    headers: { authorization: `Bearer ${site.key}`, 'content-type': 'application/json' },
    payload: text
  })
}

describe('a key repeated in one object', () => {
  const visitor = (): string => `"datafast_visitor_id":"${visitorId()}"`

  it.each([
    ['at the top level', `{"user_id":"a","user_id":"b",${visitor()}}`, '"user_id"'],
    ['nested in a metadata value', `{"user_id":"u",${visitor()},"plan":{"tier":"pro","seats":2,"tier":"free"}}`, '"tier"'],
    ['in an object inside an array', `{"user_id":"u",${visitor()},"list":[{"a":1},{"b":1,"c":2,"b":3}]}`, '"b"'],
    ['written once plainly and once escaped', `{"user_id":"a","\\u0075ser_id":"b",${visitor()}}`, '"user_id"'],
    ['escaped both times, differently', `{"user_id":"u",${visitor()},"k":{"\\u0061":1,"\\u0061":2,"a\\/":3,"a/":4}}`, '"a"'],
    ['holding quotes and backslashes', `{"user_id":"u",${visitor()},"q\\"\\\\":1,"q\\"\\\\":2}`, '"q\\"\\\\"']
  ])('is refused with 400 naming the key, %s', async (_case, text, quoted) => {
    JSON.parse(text)
    const message = expectError(await postText(text), 400)
    expect(message).toContain(`key ${quoted} `)
  })

  it('stores nothing for either value', async () => {
    expectError(await postText(`{"user_id":"first","user_id":"second",${visitor()}}`), 400)
    expect(await app.repositories.profiles.findProfile(site.websiteId, 'first')).toBeNull()
    expect(await app.repositories.profiles.findProfile(site.websiteId, 'second')).toBeNull()
  })

  it('names a long key by its first 40 characters, quoted', async () => {
    const key = `k${'x'.repeat(99)}`
    const message = expectError(await postText(`{"user_id":"u",${visitor()},"${key}":1,"${key}":2}`), 400)
    expect(message).toContain(JSON.stringify(`${key.slice(0, 40)}…`))
    expect(message).not.toContain(key.slice(0, 41))
  })

  it.each([
    ['the same key in sibling objects', `{"user_id":"s1",${visitor()},"one":{"a":1,"b":{"a":2}},"two":{"a":3}}`],
    ['the same key in objects of one array', `{"user_id":"s2",${visitor()},"list":[{"a":1},{"a":2}]}`],
    ['a key equal to a value', `{"user_id":"s3",${visitor()},"user":"user_id"}`],
    ['braces, commas and keys inside strings', `{"user_id":"s4",${visitor()},"note":"{\\"a\\":1,\\"a\\":2}","tail\\\\":"\\\\"}`],
    ['a value that quotes a key', `{"user_id":"s6",${visitor()},"note":"\\",\\"user_id\\":\\""}`],
    ['the same string twice in an array', `{"user_id":"s7",${visitor()},"tags":["x","y","x"]}`],
    ['keys that differ only after unescaping', `{"user_id":"s5",${visitor()},"k":{"a\\u0062":1,"ac":2}}`]
  ])('accepts %s', async (_case, text) => {
    JSON.parse(text)
    expectSuccess(await postText(text))
  })

  it('finds a repeat among thousands of keys of one object, and none when all differ', () => {
    const keys = Array.from({ length: 5000 }, (_, index) => `"field_${index}":${index}`)
    expect(findDuplicateKey(`{${keys.join(',')}}`)).toBeUndefined()
    expect(findDuplicateKey(`{${keys.join(',')},"field_4321":0}`)).toBe('field_4321')
    expect(findDuplicateKey(`[${keys.map((key) => `{${key}}`).join(',')}]`)).toBeUndefined()
  })

  it('keeps the other body rules', async () => {
    expect(expectError(await postText('{"user_id":"a","user_id":'), 400)).toMatch(/not valid JSON/)
    expect(expectError(await postText(''), 400)).toMatch(/empty/)
  })
})
