import { once } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { ObjectId, type CommandStartedEvent, type CommandSucceededEvent } from 'mongodb'
import { afterAll, describe, expect, it } from 'vitest'
import type { App } from '../src/app.js'
import { withDatabaseName } from '../src/storage/mongo-url.js'
import type { DatabasePart } from '../tools/local-database.js'
import { buildTestApp, createTestWebsite, identify, visitorId, type TestWebsite } from './helper.js'
import { appOnOwnDatabase } from './own-database.js'

/**
 * Each part of the database fails while calls are in flight and comes
 * back: the gateway and PostgreSQL together, PostgreSQL alone under a live
 * gateway, the gateway alone, and the network between the service and the
 * gateway. No hang, no 500, no crash, readiness follows the database, the
 * service recovers by itself, and every call answered 200 is stored: new
 * users and updates of existing ones alike.
 */

/**
 * A TCP relay that can go silent as a network partition does: nothing is
 * refused or reset, nothing arrives, and what was sent flows on once it is
 * restored.
 */
class PartitionableRelay {
  private readonly sockets = new Set<Socket>()
  private silent = false

  private constructor (private readonly server: Server, readonly port: number) {}

  static async start (targetPort: number): Promise<PartitionableRelay> {
    const server = createServer()
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const relay = new PartitionableRelay(server, (server.address() as { port: number }).port)
    server.on('connection', (client) => { relay.join(client, connect(targetPort, '127.0.0.1')) })
    return relay
  }

  private join (client: Socket, upstream: Socket): void {
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      this.sockets.add(from)
      // Paused before a data listener is added, so that the listener does not start the flow.
      if (this.silent) from.pause()
      from.on('data', (chunk) => { to.write(chunk) })
      from.on('error', () => { from.destroy() })
      from.on('close', () => {
        this.sockets.delete(from)
        to.destroy()
      })
    }
  }

  cut (): void {
    this.silent = true
    for (const socket of this.sockets) socket.pause()
  }

  restore (): void {
    this.silent = false
    for (const socket of this.sockets) socket.resume()
  }

  async close (): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    this.server.close()
    await once(this.server, 'close')
  }
}

// A call deadline under the test's 5 s bound, as in production: an outage's waits add up within a call.
const { app, database, close } = await appOnOwnDatabase({ MONGO_TIMEOUT_MS: 2000, CALL_DEADLINE_MS: 4000 }, { monitorCommands: true })
const gatewayAddress = `127.0.0.1:${new URL(database.url).port}`
const relay = await PartitionableRelay.start(Number(new URL(database.url).port))
/** The same service on the same server, through the relay. */
const relayed = await buildTestApp({
  MONGO_URL: withDatabaseName(database.url.replace(gatewayAddress, `127.0.0.1:${String(relay.port)}`), 'relayed'),
  MONGO_TIMEOUT_MS: 2000,
  CALL_DEADLINE_MS: 4000
})
afterAll(async () => {
  relay.restore()
  await relayed.close()
  await relay.close()
  await close()
})

// The driver's view of the server, printed when recovery fails: which check ran, failed or never ended.
const timelineStart = Date.now()
const driverTimeline: string[] = []
const note = (line: string) => { driverTimeline.push(`${String(Date.now() - timelineStart).padStart(6)} ms  ${line}`) }
for (const [name, { mongo: { client } }] of [['app', app], ['relayed', relayed]] as const) {
  client.on('serverHeartbeatStarted', () => { note(`${name}: heartbeat started`) })
  client.on('serverHeartbeatSucceeded', () => { note(`${name}: heartbeat succeeded`) })
  client.on('serverHeartbeatFailed', (event) => { note(`${name}: heartbeat failed: ${event.failure.message}`) })
  client.on('serverDescriptionChanged', (event) => { note(`${name}: server ${event.newDescription.type}${event.newDescription.error === null ? '' : `: ${event.newDescription.error.message}`}`) })
}

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

async function timedIdentify (target: App, site: TestWebsite, body: Record<string, unknown>): Promise<Outcome> {
  const started = Date.now()
  const response = await identify(target, { auth: site.key, body })
  return { status: response.statusCode, elapsedMs: Date.now() - started, retryAfter: response.headers['retry-after'], body: response.json() }
}

/** A call sent again while it is answered 503, a few times. */
async function untilServed (target: App, site: TestWebsite, body: Record<string, unknown>): Promise<Outcome> {
  for (let attempt = 1; ; attempt++) {
    const outcome = await timedIdentify(target, site, body)
    if (outcome.status !== 503 || attempt === 5) return outcome
    await sleep(500)
  }
}

// Many workers keep many calls in flight, so that the outage catches some of
// them between their reads and their write: a lost write then shows.
const CREATORS = 8
const UPDATERS = 16
const USERS_PER_UPDATER = 4

interface Calls { creations: Creation[], updates: Update[] }

/**
 * Calls identify from workers creating new users and workers updating users
 * of their own (so each user's updates come one after another), while `outage`
 * takes the database down and brings it back; then stops the workers.
 */
async function underLoad (target: App, site: TestWebsite, outage: (calls: Calls) => Promise<void>): Promise<Calls> {
  const creations: Creation[] = []
  const updates: Update[] = []
  const existing = Array.from({ length: UPDATERS }, (_, worker) =>
    Array.from({ length: USERS_PER_UPDATER }, (_, index) => ({ userId: `existing-${String(worker)}-${String(index)}`, visitorId: visitorId() })))
  // One call at a time per updater, as under the load, each sent again after a 503 as a client would: on a loaded machine a call can outlast the deadline.
  const made = (await Promise.all(existing.map(async (users) => {
    const outcomes: Outcome[] = []
    for (const user of users) outcomes.push(await untilServed(target, site, { user_id: user.userId, datafast_visitor_id: user.visitorId }))
    return outcomes
  }))).flat()
  expect(made.filter((outcome) => outcome.status !== 200)).toEqual([])

  let running = true
  let sequence = 0
  const creator = async (): Promise<void> => {
    while (running) {
      const userId = `new-user-${String(sequence++)}`
      const vid = visitorId()
      const outcome = await timedIdentify(target, site, { user_id: userId, datafast_visitor_id: vid, plan: 'pro', seats: sequence })
      creations.push({ userId, visitorId: vid, outcome })
      if (outcome.status !== 200) await sleep(50)
    }
  }
  const updater = async (users: ReadonlyArray<{ userId: string, visitorId: string }>): Promise<void> => {
    for (let turn = 0; running; turn++) {
      const user = users[turn % users.length]!
      const step = sequence++
      const outcome = await timedIdentify(target, site, { user_id: user.userId, datafast_visitor_id: user.visitorId, [`step_${String(step)}`]: step, last: step })
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
 * SIGKILL of a part at the moment a call has looked for a new user's
 * profile and found none, the last of its reads before its writes (the
 * profile, then the visitor's link): those writes meet a dead server, the
 * case in which a creation acknowledged but never stored would show. An
 * update of a listed visitor is one command, with no gap to hit. stop()
 * sends the signal before its first await, so within this listener, before
 * the app's code goes on.
 */
async function killBetweenReadAndWrite (part: DatabasePart): Promise<void> {
  const lookups = new Set<number>()
  const started = (event: CommandStartedEvent): void => {
    if (event.commandName === 'findAndModify' && event.command.findAndModify === 'profiles') lookups.add(event.requestId)
  }
  await new Promise<void>((resolve, reject) => {
    const succeeded = (event: CommandSucceededEvent): void => {
      if (!lookups.delete(event.requestId) || (event.reply as { value?: unknown }).value !== null) return
      app.mongo.client.off('commandSucceeded', succeeded)
      database.stop('SIGKILL', part).then(resolve, reject)
    }
    app.mongo.client.on('commandStarted', started)
    app.mongo.client.on('commandSucceeded', succeeded)
  }).finally(() => { app.mongo.client.off('commandStarted', started) })
}

interface Outage {
  /** What fails, in the test's name. */
  what: string
  /** The app that calls through what fails. */
  target: App
  stop: () => Promise<void>
  restore: () => Promise<void>
}

const restart = async () => { await database.start() }

describe.each<Outage>([
  { what: 'the gateway and PostgreSQL stop (SIGTERM)', target: app, stop: async () => { await database.stop('SIGTERM') }, restore: restart },
  { what: 'PostgreSQL stops (a fast shutdown) under a live gateway', target: app, stop: async () => { await database.stop('SIGTERM', 'postgres') }, restore: restart },
  { what: 'PostgreSQL is killed (SIGKILL) between a call\'s reads and its write, under a live gateway', target: app, stop: async () => { await killBetweenReadAndWrite('postgres') }, restore: restart },
  { what: 'the gateway is killed (SIGKILL) between a call\'s reads and its write', target: app, stop: async () => { await killBetweenReadAndWrite('gateway') }, restore: restart },
  {
    what: 'the network to the gateway goes silent (nothing answers, nothing is refused)',
    target: relayed,
    stop: async () => { relay.cut() },
    restore: async () => { relay.restore() }
  }
])('a database outage under load', ({ what, target, stop, restore }) => {
  it(`while ${what}: 503 quickly, recovers by itself, loses no acknowledged creation or update`, async () => {
    const site = await createTestWebsite(target)
    let readyDuringOutage: Awaited<ReturnType<typeof target.inject>> | undefined
    let recovered = false
    const { creations, updates } = await underLoad(target, site, async (calls) => {
      await sleep(2000)
      note(`stopping: ${what}`)
      await stop()
      note('stopped')
      await sleep(4000)
      readyDuringOutage = await target.inject('/readyz')
      await restore()
      note('restored')

      const deadline = Date.now() + 20_000
      while (Date.now() < deadline && !recovered) {
        await sleep(250)
        const latest = [...calls.creations.slice(-CREATORS), ...calls.updates.slice(-UPDATERS)]
        recovered = latest.some(({ outcome }) => outcome.status === 200) && (await target.inject('/readyz')).statusCode === 200
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
    const profiles = new Map((await target.mongo.db.collection('profiles').find({ websiteId }).toArray()).map((profile) => [profile.userId as string, profile]))
    const linkedTo = new Map((await target.mongo.db.collection('visitorLinks').find({ websiteId }).toArray()).map((link) => [link.visitorId as string, link.profileId as ObjectId]))

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
