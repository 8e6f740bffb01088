import { afterAll, describe, expect, it } from 'vitest'
import { startDatabase, withDatabaseName } from '../scripts/local-database.js'
import { buildTestApp, createTestWebsite, identify, visitorId } from './helper.js'

/**
 * The database stops while calls are in flight and starts again: no hang,
 * no 500, no crash, readiness follows the database, the service recovers by
 * itself, and every call answered 200 is stored.
 */
const database = await startDatabase({ embedded: true })
const app = await buildTestApp({ MONGO_URL: withDatabaseName(database.url, 'outage'), MONGO_TIMEOUT_MS: 2000 })
const site = await createTestWebsite(app)

// The driver's view of the server, printed when recovery fails: which check ran, failed or never ended.
const timelineStart = Date.now()
const driverTimeline: string[] = []
const note = (line: string) => { driverTimeline.push(`${String(Date.now() - timelineStart).padStart(6)} ms  ${line}`) }
app.mongo.client.on('serverHeartbeatStarted', () => { note('heartbeat started') })
app.mongo.client.on('serverHeartbeatSucceeded', () => { note('heartbeat succeeded') })
app.mongo.client.on('serverHeartbeatFailed', (event) => { note(`heartbeat failed: ${event.failure.message}`) })
app.mongo.client.on('serverDescriptionChanged', (event) => { note(`server ${event.newDescription.type}${event.newDescription.error === null ? '' : `: ${event.newDescription.error.message}`}`) })

afterAll(async () => {
  await app.close()
  await database.close()
})

interface Outcome {
  userId: string
  status: number
  elapsedMs: number
  retryAfter: string | undefined
  body: unknown
}

const sleep = async (ms: number) => { await new Promise((resolve) => setTimeout(resolve, ms)) }

describe('a database outage under load', () => {
  it('answers 503 quickly while the database is down, recovers by itself, and loses no acknowledged call', async () => {
    const outcomes: Outcome[] = []
    let running = true
    let sequence = 0
    const worker = async (): Promise<void> => {
      while (running) {
        const userId = `outage-user-${String(sequence++)}`
        const started = Date.now()
        const response = await identify(app, { auth: site.key, body: { user_id: userId, datafast_visitor_id: visitorId(), plan: 'pro', seats: sequence } })
        outcomes.push({ userId, status: response.statusCode, elapsedMs: Date.now() - started, retryAfter: response.headers['retry-after'], body: response.json() })
        if (response.statusCode !== 200) await sleep(50)
      }
    }
    const workers = Array.from({ length: 8 }, worker)

    await sleep(1000)
    note('stopping the database')
    await database.stop()
    note('database stopped')
    await sleep(4000)
    const readyDuringOutage = await app.inject('/readyz')
    await database.start()
    note('database started')

    const deadline = Date.now() + 20_000
    let recovered = false
    while (Date.now() < deadline && !recovered) {
      await sleep(250)
      recovered = outcomes.slice(-8).some((outcome) => outcome.status === 200) && (await app.inject('/readyz')).statusCode === 200
    }
    await sleep(1000)
    running = false
    await Promise.all(workers)

    expect(readyDuringOutage.statusCode).toBe(503)
    expect(readyDuringOutage.json()).toMatchObject({ status: 'error', error: { code: 503 } })
    expect(recovered, `no recovery within 20 s; the driver saw:\n${driverTimeline.join('\n')}`).toBe(true)

    const failures = outcomes.filter((outcome) => outcome.status !== 200)
    expect(failures.length).toBeGreaterThan(0)
    for (const failure of failures) {
      expect(failure.status).toBe(503)
      expect(failure.retryAfter).toBeDefined()
      expect(failure.body).toMatchObject({ status: 'error', error: { code: 503 } })
    }
    expect(Math.max(...outcomes.map((outcome) => outcome.elapsedMs))).toBeLessThan(5000)

    const acknowledged = outcomes.filter((outcome) => outcome.status === 200).map((outcome) => outcome.userId)
    expect(acknowledged.length).toBeGreaterThan(10)
    for (const userId of acknowledged) {
      const profile = await app.repositories.profiles.findProfile(site.websiteId, userId)
      expect(profile?.userId, userId).toBe(userId)
      expect(profile?.visitorIds).toHaveLength(1)
    }
  }, 60_000)
})
