import type { IncomingMessage, ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { ObjectId } from 'mongodb'
import { expect } from 'vitest'
import type { App } from '../../../src/app.js'
import type { Config } from '../../../src/config.js'
import { buildTestApp, createTestWebsite, visitorId, type TestWebsite } from '../../../test/helper.js'
import type { IdentifyBody } from '../src/index.js'

/** One HTTP request the service received, and how it was answered. */
export interface RecordedRequest {
  path: string
  arrivedAt: number
  contentEncoding: string | undefined
  /** Bytes of the body as sent (compressed, when it was). */
  contentLength: number
  status?: number
  retryAfter?: string
  answeredAt?: number
}

/** Every request the app's server receives from now on, seen on the socket side: what a client really sent. */
export function recordRequests (app: App): RecordedRequest[] {
  const requests: RecordedRequest[] = []
  app.server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const record: RecordedRequest = {
      path: request.url ?? '',
      arrivedAt: Date.now(),
      contentEncoding: request.headers['content-encoding'],
      contentLength: Number(request.headers['content-length'] ?? 0)
    }
    requests.push(record)
    response.on('finish', () => {
      record.status = response.statusCode
      record.answeredAt = Date.now()
      const retryAfter = response.getHeader('retry-after')
      if (retryAfter !== undefined) record.retryAfter = String(retryAfter)
    })
  })
  return requests
}

export const batchRequests = (requests: readonly RecordedRequest[]): RecordedRequest[] => requests.filter((request) => request.path.startsWith('/api/v1/identify/batch'))
export const singleRequests = (requests: readonly RecordedRequest[]): RecordedRequest[] => requests.filter((request) => /^\/api\/v1\/identify(\?|$)/.test(request.path))

/** The app on a real port of 127.0.0.1; returns its base URL. */
export async function listen (app: App): Promise<string> {
  return await app.listen({ host: '127.0.0.1', port: 0 })
}

/** Each answer of this status carried Retry-After, was retried, and its retry came no sooner than Retry-After asked. */
export function expectRetriedAfterRetryAfter (requests: readonly RecordedRequest[], status: number): void {
  for (const [n, request] of requests.entries()) {
    if (request.status !== status) continue
    const retry = requests[n + 1]
    expect(request.retryAfter).toMatch(/^\d+$/)
    expect(retry, `the ${String(status)} was retried`).toBeDefined()
    expect(retry?.arrivedAt ?? 0).toBeGreaterThanOrEqual((request.answeredAt ?? 0) + Number(request.retryAfter) * 1000 - 10)
  }
}

export interface ServedApp {
  app: App
  site: TestWebsite
  url: string
  requests: RecordedRequest[]
}

/** The service with its own database, a website, listening, and recording its requests. */
export async function serveTestApp (overrides: Partial<Config> = {}): Promise<ServedApp> {
  const app = await buildTestApp(overrides)
  const site = await createTestWebsite(app)
  const requests = recordRequests(app)
  return { app, site, url: await listen(app), requests }
}

/** The user ids of the website's stored profiles, sorted. */
export async function storedUserIds (app: App, site: TestWebsite): Promise<string[]> {
  const profiles = await app.mongo.db.collection<{ userId: string, websiteId: ObjectId }>('profiles').find({ websiteId: new ObjectId(site.websiteId) }).toArray()
  return profiles.map((profile) => profile.userId).sort()
}

/** n identify bodies of distinct new users, `prefix-0` … */
export const bodies = (prefix: string, n: number): IdentifyBody[] =>
  Array.from({ length: n }, (_, index) => ({ user_id: `${prefix}-${String(index)}`, datafast_visitor_id: visitorId(), plan: 'pro' }))

export const userIdsOf = (calls: readonly IdentifyBody[]): string[] => calls.map((call) => call.user_id).sort()

/** Polls until the condition holds; fails with `what` after timeoutMs. */
export async function waitFor (what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}
