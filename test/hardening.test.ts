import type { Browser } from 'playwright-core'
import type { LightMyRequestResponse } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { findDuplicateKey } from '../src/plugins/app/json-body.js'
import { buildTestApp, createTestWebsite, expectError, expectSuccess, launchChromium, visitorId } from './helper.js'

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

describe('protective headers', () => {
  function expectProtected (response: LightMyRequestResponse, policy: RegExp): void {
    const what = `${response.statusCode} ${response.body.slice(0, 60)}`
    expect(response.headers['x-content-type-options'], what).toBe('nosniff')
    expect(response.headers['x-frame-options'], what).toBe('DENY')
    expect(response.headers['referrer-policy'], what).toBe('no-referrer')
    expect(response.headers['cross-origin-resource-policy'], what).toBe('same-origin')
    expect(String(response.headers['content-security-policy']), what).toMatch(policy)
    expect(String(response.headers['content-security-policy']), what).toContain("frame-ancestors 'none'")
    expect(response.headers.server, what).toBeUndefined()
    expect(response.headers['x-powered-by'], what).toBeUndefined()
    expect(response.headers['access-control-allow-origin'], what).toBeUndefined()
  }
  const api = /^default-src 'none';/

  it('are on an API answer and on error answers', async () => {
    const origin = { origin: 'https://app.example.com' }
    const ok = await app.inject({
      method: 'POST',
      url: '/api/v1/identify',
      headers: { authorization: `Bearer ${site.key}`, ...origin },
      payload: { user_id: 'headers', datafast_visitor_id: visitorId() }
    })
    expectSuccess(ok)
    expectProtected(ok, api)
    const errors = [
      [await postText('{"a":1,"a":2}'), 400],
      [await app.inject({ method: 'POST', url: '/api/v1/identify', headers: origin, payload: {} }), 401],
      [await app.inject({ method: 'GET', url: '/nowhere', headers: origin }), 404],
      [await app.inject({ method: 'OPTIONS', url: '/api/v1/identify', headers: { ...origin, 'access-control-request-method': 'POST' } }), 405]
    ] as const
    for (const [response, status] of errors) {
      expectError(response, status)
      expectProtected(response, api)
    }
    const health = await app.inject({ method: 'GET', url: '/healthz' })
    expect(health.statusCode).toBe(200)
    expectProtected(health, api)
  })

  it('on /docs carry a policy that lets Swagger UI load its own scripts only', async () => {
    for (const url of ['/docs', '/docs/', '/docs/static/swagger-initializer.js']) {
      const response = await app.inject({ method: 'GET', url })
      expect(response.statusCode, url).toBe(200)
      expectProtected(response, /^default-src 'self';/)
      const policy = String(response.headers['content-security-policy'])
      expect(policy, url).toContain("script-src 'self';")
      expect(policy, url).not.toContain('unsafe-eval')
      expect(policy, url).not.toContain('upgrade-insecure-requests')
    }
    // The OpenAPI document is plain JSON, like the API.
    expectProtected(await app.inject({ method: 'GET', url: '/openapi.json' }), api)
  })
})

describe('GET /docs in a real browser', () => {
  let browser: Browser
  let base: string

  beforeAll(async () => {
    base = await app.listen({ host: '127.0.0.1', port: 0 })
    browser = await launchChromium()
  })
  afterAll(async () => { await browser.close() })

  it('renders under its Content-Security-Policy without a single violation or console error', async () => {
    const page = await browser.newPage()
    const problems: string[] = []
    // Try it out sends no key on purpose: its 401 is the one error the console may show.
    const expected401 = 'Failed to load resource: the server responded with a status of 401 (Unauthorized)'
    page.on('console', (message) => {
      if ((message.type() === 'error' || message.type() === 'warning') && message.text() !== expected401) problems.push(`console: ${message.text()}`)
    })
    page.on('pageerror', (error) => { problems.push(`page error: ${error.message}`) })
    await page.exposeFunction('reportViolation', (text: string) => { problems.push(`violation: ${text}`) })
    // Runs in the page, before its own scripts (as text: the tests are compiled without the DOM types).
    await page.addInitScript({
      content: "document.addEventListener('securitypolicyviolation', (event) => { reportViolation(event.violatedDirective + ' ' + event.blockedURI) })"
    })
    const response = await page.goto(`${base}/docs`)
    expect(String(response?.headers()['content-security-policy'])).toMatch(/^default-src 'self';/)
    const operation = page.locator('.opblock-post .opblock-summary-path', { hasText: /^\s*\/api\/v1\/identify\s*$/ })
    await operation.waitFor({ timeout: 15_000 })
    await operation.click()
    await page.locator('.opblock-post .opblock-body').waitFor()
    // Try it out exercises the page's own requests and its dynamic styles.
    await page.locator('.opblock-post .try-out__btn').click()
    await page.locator('.opblock-post .execute').click()
    await page.locator('.opblock-post .live-responses-table .response-col_status', { hasText: '401' }).waitFor({ timeout: 15_000 })
    expect(problems).toEqual([])
    await page.close()
  })
})
