import { randomUUID } from 'node:crypto'
import type { LightMyRequestResponse } from 'fastify'
import { chromium, type Browser } from 'playwright-core'
import { expect, inject } from 'vitest'
import { buildApp, type App, type BuildAppOptions } from '../src/app.js'
import { loadConfig, type Config } from '../src/config.js'
import { withDatabaseName } from '../tools/local-database.js'
import { provisionWebsite, type ProvisionedWebsite } from '../tools/provision.js'

/** A connection string to a fresh, uniquely named database on the test server. */
export function testDatabaseUrl (): string {
  return withDatabaseName(inject('mongoUrl'), `test_${randomUUID().replaceAll('-', '').slice(0, 12)}`)
}

/** The same connection string with these driver options set in its query, e.g. { maxPoolSize: '8' }. */
export function withConnectionOptions (url: string, options: Record<string, string>): string {
  const [base, query] = url.split('?') as [string, string | undefined]
  const params = new URLSearchParams(query)
  for (const [name, value] of Object.entries(options)) params.set(name, value)
  return `${base}?${params.toString()}`
}

/** Headless Chromium from Debian's package, as the docs-page tests drive it. */
export async function launchChromium (): Promise<Browser> {
  return await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
  })
}

export function testConfig (overrides: Partial<Config> = {}): Config {
  return loadConfig({}, {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    MONGO_URL: testDatabaseUrl(),
    // Revocation and suspension take effect at once unless a test turns the cache on.
    AUTH_CACHE_TTL_MS: 0,
    // Tests send many wrong keys on purpose; the limiter has its own tests with a small budget.
    AUTH_FAILURE_MAX: 100_000,
    // Load shedding reacts to the machine's load, which parallel test files make noisy; its own tests turn it on.
    PRESSURE_MAX_EVENT_LOOP_DELAY_MS: 0,
    ...overrides
  })
}

/**
 * Builds the same app as the server, on a database of its own that is
 * dropped when the app closes.
 */
export async function buildTestApp (overrides: Partial<Config> = {}, options: BuildAppOptions = {}): Promise<App> {
  const app = await buildApp(testConfig(overrides), options)
  app.addHook('preClose', async () => { await app.mongo.db.dropDatabase() })
  await app.ready()
  return app
}

export type TestWebsite = ProvisionedWebsite

/** An account with one website and one website key, made through the repositories like the CLI does. */
export async function createTestWebsite (app: App, options: { cookieless?: boolean, accountId?: string } = {}): Promise<TestWebsite> {
  return await provisionWebsite(app.repositories, options)
}

export async function createTestToken (app: App, input: {
  accountId: string
  permissions?: string[]
  websiteIds?: string[]
  expiresAt?: Date | null
}): Promise<{ id: string, token: string }> {
  return await app.repositories.credentials.createAccountToken({
    accountId: input.accountId,
    permissions: input.permissions ?? ['identify:write'],
    websiteIds: input.websiteIds ?? [],
    name: 'test',
    expiresAt: input.expiresAt ?? null
  })
}

export const visitorId = (): string => randomUUID()

/** POST /api/v1/identify through app.inject(). */
export async function identify (app: App, options: { auth?: string, websiteId?: string, body?: unknown, headers?: Record<string, string> }) {
  return await app.inject({
    method: 'POST',
    url: '/api/v1/identify',
    query: options.websiteId === undefined ? {} : { websiteId: options.websiteId },
    headers: {
      ...(options.auth === undefined ? {} : { authorization: `Bearer ${options.auth}` }),
      ...options.headers
    },
    ...(options.body === undefined ? {} : { payload: options.body as object })
  })
}

/** Every document of every collection as sorted JSON texts: what a refused call must leave as it was. */
export async function snapshot (target: App): Promise<Record<string, string[]>> {
  const db = target.mongo.db
  const result: Record<string, string[]> = {}
  for (const { name } of await db.listCollections({}, { nameOnly: true }).toArray()) {
    const documents = await db.collection(name).find({}).toArray()
    result[name] = documents.map((document) => JSON.stringify(document)).sort()
  }
  return Object.fromEntries(Object.entries(result).sort(([a], [b]) => a.localeCompare(b)))
}

/** The one error envelope (docs/api.md#error-envelope), with the status repeated as its code; returns the message. */
export function expectError (response: LightMyRequestResponse, status: number): string {
  expect(response.statusCode, response.body).toBe(status)
  expect(String(response.headers['content-type'])).toMatch(/^application\/json/)
  const json = response.json<{ error: { message: string } }>()
  expect(json).toStrictEqual({ status: 'error', error: { code: status, message: expect.any(String) } })
  expect(json.error.message.length).toBeGreaterThan(0)
  return json.error.message
}

export function expectSuccess (response: LightMyRequestResponse): void {
  expect(response.statusCode, response.body).toBe(200)
  expect(response.json().status).toBe('success')
}

/** A Retry-After value: seconds, or an HTTP date. */
export const RETRY_AFTER = /^\d+$|^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/
