import { ObjectId, type CommandSucceededEvent } from 'mongodb'
import { afterAll, describe, expect, it } from 'vitest'
import { createTestWebsite, identify, visitorId, type TestWebsite } from './helper.js'
import { appOnOwnDatabase } from './own-database.js'

/**
 * The database stops while calls are in flight and starts again: no hang,
 * no 500, no crash, readiness follows the database, the service recovers by
 * itself, and every call answered 200 is stored: new users and updates of
 * existing ones alike.
 */
const { app, database, close } = await appOnOwnDatabase({ MONGO_TIMEOUT_MS: 2000 }, { monitorCommands: true })
afterAll(close)

// The driver's view of the server, printed when recovery fails: which check ran, failed or never ended.
const timelineStart = Date.now()
const driverTimeline: string[] = []
const note = (line: string) => { driverTimeline.push(`${String(Date.now() - timelineStart).padStart(6)} ms  ${line}`) }
app.mongo.client.on('serverHeartbeatStarted', () => { note('heartbeat started') })
app.mongo.client.on('serverHeartbeatSucceeded', () => { note('heartbeat succeeded') })
app.mongo.client.on('serverHeartbeatFailed', (event) => { note(`heartbeat failed: ${event.failure.message}`) })
app.mongo.client.on('serverDescriptionChanged', (event) => { note(`server ${event.newDescription.type}${event.newDescription.error === null ? '' : `: ${event.newDescription.error.message}`}`) })

interface Outcome {
  status: number
  elapsedMs: number
  retryAfter: string | undefined
  body: unknown
}

/** A call that created a user: when answered 200, the user and its visitor are stored. */
interface Creation { userId: string, visitorId: string, outcome: Outcome }
/** A call that set `step_<step>` (and `last`) on an existing user: when answered 200, that field is stored. */
interface Update { userId: string, step: number, outcome: Outcome }

const sleep = async (ms: number) => { await new Promise((resolve) => setTimeout(resolve, ms)) }

async function timedIdentify (site: TestWebsite, body: Record<string, unknown>): Promise<Outcome> {
  const started = Date.now()
  const response = await identify(app, { auth: site.key, body })
  return { status: response.statusCode, elapsedMs: Date.now() - started, retryAfter: response.headers['retry-after'], body: response.json() }
}

// Many workers keep many calls queued on the app's one connection, so that the outage catches
// some of them between their reads and their write: a lost write then shows.
const CREATORS = 8
const UPDATERS = 16
const USERS_PER_UPDATER = 4

interface Calls { creations: Creation[], updates: Update[] }

/** The visitors of the users that the updaters update. */
const existingVisitors = new Set<string>()

/**
 * Calls identify from workers creating new users and workers updating users
 * of their own (so each user's updates come one after another), while `outage`
 * takes the database down and brings it back; then stops the workers.
 */
async function underLoad (site: TestWebsite, outage: (calls: Calls) => Promise<void>): Promise<Calls> {
  const creations: Creation[] = []
  const updates: Update[] = []
  const existing = Array.from({ length: UPDATERS }, (_, worker) =>
    Array.from({ length: USERS_PER_UPDATER }, (_, index) => ({ userId: `existing-${String(worker)}-${String(index)}`, visitorId: visitorId() })))
  for (const user of existing.flat()) existingVisitors.add(user.visitorId)
  const made = await Promise.all(existing.flat().map(async (user) => await timedIdentify(site, { user_id: user.userId, datafast_visitor_id: user.visitorId })))
  expect(made.map((outcome) => outcome.status)).toEqual(made.map(() => 200))

  let running = true
  let sequence = 0
  const creator = async (): Promise<void> => {
    while (running) {
      const userId = `new-user-${String(sequence++)}`
      const vid = visitorId()
      const outcome = await timedIdentify(site, { user_id: userId, datafast_visitor_id: vid, plan: 'pro', seats: sequence })
      creations.push({ userId, visitorId: vid, outcome })
      if (outcome.status !== 200) await sleep(50)
    }
  }
  const updater = async (users: ReadonlyArray<{ userId: string, visitorId: string }>): Promise<void> => {
    for (let turn = 0; running; turn++) {
      const user = users[turn % users.length]!
      const step = sequence++
      const outcome = await timedIdentify(site, { user_id: user.userId, datafast_visitor_id: user.visitorId, [`step_${String(step)}`]: step, last: step })
      updates.push({ userId: user.userId, step, outcome })
      if (outcome.status !== 200) await sleep(50)
    }
  }
  const workers = [...Array.from({ length: CREATORS }, creator), ...existing.map(updater)]
  try {
    await outage({ creations, updates })
  } finally {
    running = false
    await Promise.all(workers)
  }
  return { creations, updates }
}

/**
 * SIGKILL at the moment the app has read an existing user's visitor link,
 * the last of the reads before its update: that call's write meets a dead
 * server, the case in which an update acknowledged but never stored would show.
 * stop() sends the signal before its first await, so within this listener,
 * before the app's code goes on.
 */
async function killBetweenReadAndWrite (): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const listener = (event: CommandSucceededEvent): void => {
      const cursor = (event.reply as { cursor?: { ns?: string, firstBatch?: Array<{ visitorId?: unknown }> } }).cursor
      const linked = cursor?.firstBatch?.[0]?.visitorId
      if (event.commandName !== 'find' || cursor?.ns?.endsWith('.visitorLinks') !== true || !existingVisitors.has(String(linked))) return
      app.mongo.client.off('commandSucceeded', listener)
      database.stop('SIGKILL').then(resolve, reject)
    }
    app.mongo.client.on('commandSucceeded', listener)
  })
}

describe.each([
  { how: 'stops (SIGTERM: FerretDB serves open connections for a few seconds more)', stop: async () => { await database.stop('SIGTERM') } },
  { how: 'is killed (SIGKILL) between a call\'s reads and its write', stop: killBetweenReadAndWrite }
])('a database outage under load', ({ how, stop }) => {
  it(`while the database ${how}: 503 quickly, recovers by itself, loses no acknowledged creation or update`, async () => {
    const site = await createTestWebsite(app)
    let readyDuringOutage: Awaited<ReturnType<typeof app.inject>> | undefined
    let recovered = false
    const { creations, updates } = await underLoad(site, async (calls) => {
      await sleep(2000)
      note('stopping the database')
      await stop()
      note('database stopped')
      await sleep(4000)
      readyDuringOutage = await app.inject('/readyz')
      await database.start()
      note('database started')

      const deadline = Date.now() + 20_000
      while (Date.now() < deadline && !recovered) {
        await sleep(250)
        const latest = [...calls.creations.slice(-CREATORS), ...calls.updates.slice(-UPDATERS)]
        recovered = latest.some(({ outcome }) => outcome.status === 200) && (await app.inject('/readyz')).statusCode === 200
      }
      await sleep(1000)
    })

    expect(readyDuringOutage?.statusCode).toBe(503)
    expect(readyDuringOutage?.json()).toMatchObject({ status: 'error', error: { code: 503 } })
    expect(recovered, `no recovery within 20 s; the driver saw:\n${driverTimeline.join('\n')}`).toBe(true)

    const outcomes = [...creations, ...updates].map(({ outcome }) => outcome)
    const failures = outcomes.filter((outcome) => outcome.status !== 200)
    expect(failures.length).toBeGreaterThan(0)
    for (const failure of failures) {
      expect(failure.status, JSON.stringify(failure.body)).toBe(503)
      expect(failure.retryAfter).toBeDefined()
      expect(failure.body).toMatchObject({ status: 'error', error: { code: 503 } })
    }
    expect(Math.max(...outcomes.map((outcome) => outcome.elapsedMs))).toBeLessThan(5000)

    // One read of each collection for the whole website, not one per profile.
    const websiteId = new ObjectId(site.websiteId)
    const profiles = new Map((await app.mongo.db.collection('profiles').find({ websiteId }).toArray()).map((profile) => [profile.userId as string, profile]))
    const linkedTo = new Map((await app.mongo.db.collection('visitorLinks').find({ websiteId }).toArray()).map((link) => [link.visitorId as string, link.profileId as ObjectId]))

    const created = creations.filter(({ outcome }) => outcome.status === 200)
    expect(created.length).toBeGreaterThan(10)
    for (const { userId, visitorId: vid } of created) {
      const profile = profiles.get(userId)
      expect(profile, userId).toBeDefined()
      expect(linkedTo.get(vid)?.equals(profile!._id), `${userId}'s visitor`).toBe(true)
    }

    const updated = updates.filter(({ outcome }) => outcome.status === 200)
    expect(updated.length).toBeGreaterThan(10)
    for (const { userId, step } of updated) {
      expect((profiles.get(userId)?.metadata as Record<string, unknown> | undefined)?.[`step_${String(step)}`], `${userId}, step ${String(step)}`).toBe(step)
    }
    // Each user's `last` is from its last acknowledged update (none: no `last`), or from a later one whose answer the outage lost.
    for (const userId of new Set(updates.map((update) => update.userId))) {
      const mine = updates.filter((update) => update.userId === userId)
      const acknowledged = Math.max(-1, ...mine.filter(({ outcome }) => outcome.status === 200).map(({ step }) => step))
      const possible = [acknowledged, ...mine.filter(({ step }) => step > acknowledged).map(({ step }) => step)]
      expect(possible, userId).toContain((profiles.get(userId)!.metadata as { last?: number }).last ?? -1)
    }
  }, 60_000)
})
