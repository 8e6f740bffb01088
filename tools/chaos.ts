import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { connectDatabase } from '../src/storage/database.js'
import { createRepositories, ensureIndexes } from '../src/storage/repositories/index.js'
import { startDatabase, withDatabaseName, type LocalDatabase } from './local-database.js'
import { provisionWebsite } from './provision.js'
import { freePort, RedisServer } from './redis-server.js'

/**
 * `npm run chaos`: two replicas (server processes) on one database and one
 * Redis under steady identify load of new users, while the database's
 * PostgreSQL and, separately, its gateway are SIGKILLed and restarted, one
 * replica is SIGKILLed and restarted, and Redis is stopped for a while. Then
 * every call answered 200 is re-sent and must come back `unchanged`. Every
 * other answer must be a 503 in the envelope, a refused connection to a
 * killed replica, or a call in flight on a replica when it was killed; never
 * a 500, never a hang over 5 s; and each database kill must be answered with
 * a 503 within 5 s. The replica that is never killed must keep a flat memory.
 */

export interface ChaosOptions {
  /** How long the load runs. */
  seconds: number
  /** SIGKILLs of PostgreSQL (under a live gateway) and of the gateway, spread over the run; replica kills and Redis stops come on top. */
  postgresKills: number
  gatewayKills: number
  replicaKills: number
  redisStops: number
  /** Concurrent callers. */
  workers: number
  log: (line: string) => void
}

/** The parts of the database the run kills. */
type DatabaseKill = 'postgres' | 'gateway'

export interface ChaosReport {
  postgresKills: number
  gatewayKills: number
  replicaKills: number
  redisStops: number
  calls: number
  ok: number
  unavailable: number
  refused: number
  droppedByKill: number
  failures: string[]
  /** How many failures of each kind, by replica and by the kill or restart last before the call was sent. */
  failureGroups: Record<string, number>
  /** For each kill of a part, how long until a call was answered 503, in ms. */
  firstUnavailableMs: Record<DatabaseKill, number[]>
  acknowledged: number
  lost: number
  lostAnswers: string[]
  survivorRssMiB: { start: number, end: number }
  wallSeconds: number
}

/** Every call, and every database outage, must be answered within this. */
const ANSWER_WITHIN_MS = 5000
/** More growth than this of the replica that is never killed counts as a leak. */
const RSS_GROWTH_LIMIT_MIB = 64

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const between = (min: number, max: number): number => min + Math.random() * (max - min)

const root = fileURLToPath(new URL('..', import.meta.url))

/**
 * The service compiled as the Dockerfile builds it, in a directory of this
 * run's own under .cache (where node_modules resolves). Replicas run it with
 * plain node, as in production: through tsx each restart would compile the
 * sources again, seconds of CPU that starve the other replica on a small machine.
 */
function buildService (): { entry: string, remove: () => void } {
  const outDir = join(root, '.cache', `chaos-dist-${String(process.pid)}`)
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', outDir], { cwd: root, stdio: 'inherit' })
  return { entry: join(outDir, 'server.js'), remove: () => { rmSync(outDir, { recursive: true, force: true }) } }
}

/** One server process on a fixed port, so that it comes back where the load expects it. */
class Replica {
  private child: ChildProcess | null = null
  /** Until when a connection error to it is expected: it was killed and is starting again. */
  downUntil = 0

  constructor (readonly port: number, private readonly entry: string, private readonly env: Record<string, string>) {}

  get url (): string { return `http://127.0.0.1:${this.port}` }

  async start (): Promise<void> {
    const child = spawn(process.execPath, [this.entry], {
      cwd: root,
      env: { ...process.env, ...this.env, PORT: String(this.port) },
      stdio: ['ignore', 'ignore', 'inherit']
    })
    this.child = child
    const deadline = Date.now() + 60_000
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`replica on ${this.port} exited with ${String(child.exitCode)}`)
      const healthy = await fetch(`${this.url}/healthz`).then((response) => response.ok, () => false)
      if (healthy) return
      await sleep(200)
    }
    throw new Error(`replica on ${this.port} did not start within 60 s`)
  }

  async kill (): Promise<void> {
    const child = this.child
    if (child === null || child.exitCode !== null || child.signalCode !== null) return
    this.downUntil = Number.POSITIVE_INFINITY
    child.kill('SIGKILL')
    await once(child, 'exit')
  }

  rssMiB (): number {
    const pid = this.child?.pid
    if (pid === undefined) return 0
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${String(pid)}/status`, 'utf8'))
    return Math.round(Number(match?.[1] ?? 0) / 1024)
  }
}

interface Call { body: Record<string, unknown>, replica: number }

/** What a call's answer (or its failure) was, in the run's classes. */
type Outcome = 'ok' | 'unavailable' | 'refused' | 'dropped-by-kill' | `failure: ${string}`

async function send (replica: Replica, key: string, body: Record<string, unknown>): Promise<{ outcome: Outcome, json?: unknown }> {
  const started = Date.now()
  try {
    const response = await fetch(`${replica.url}/api/v1/identify`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(ANSWER_WITHIN_MS)
    })
    const json: unknown = await response.json()
    if (response.status === 200) return { outcome: 'ok', json }
    const envelope = json as { status?: string, error?: { code?: number } }
    if (response.status === 503 && envelope.status === 'error' && envelope.error?.code === 503) return { outcome: 'unavailable' }
    return { outcome: `failure: ${String(response.status)} ${JSON.stringify(json)}` }
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name
    if (cause === 'TimeoutError') return { outcome: `failure: no answer within ${String(ANSWER_WITHIN_MS)} ms` }
    const killed = replica.downUntil >= started
    if (killed && cause === 'ECONNREFUSED') return { outcome: 'refused' }
    if (killed) return { outcome: 'dropped-by-kill' }
    return { outcome: `failure: ${cause}` }
  }
}

export async function runChaos (options: ChaosOptions): Promise<ChaosReport> {
  const began = Date.now()
  const { log } = options
  const service = buildService()
  const database: LocalDatabase = await startDatabase({ embedded: true })
  const redis = await RedisServer.start()
  const mongoUrl = withDatabaseName(database.url, 'chaos')
  const replicas: Replica[] = []
  try {
    const { client, db } = await connectDatabase(mongoUrl, 5000)
    const repositories = createRepositories(db)
    await ensureIndexes(repositories)
    const site = await provisionWebsite(repositories)
    await client.close()

    const env = {
      NODE_ENV: 'production',
      LOG_LEVEL: 'error',
      HOST: '127.0.0.1',
      MONGO_URL: mongoUrl,
      MONGO_TIMEOUT_MS: '2000',
      // Under the run's 5 s bar, with room for the answer to travel on a loaded machine.
      CALL_DEADLINE_MS: '4000',
      REDIS_URL: redis.url,
      RATE_LIMIT_MAX: '1000000',
      PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0'
    }
    for (let i = 0; i < 2; i++) replicas.push(new Replica(await freePort(), service.entry, env))
    await Promise.all(replicas.map(async (replica) => { await replica.start() }))
    const [survivor, victim] = replicas as [Replica, Replica]
    log(`replicas on ${replicas.map((replica) => replica.port).join(' and ')}; database ${database.url}; Redis ${redis.url}`)

    const acknowledged: Call[] = []
    const counts = new Map<string, number>()
    const failures: string[] = []
    const failureGroups = new Map<string, number>()
    /** When each 503 was answered, in order. */
    const unavailableAt: number[] = []
    const kills: Array<{ part: DatabaseKill, at: number }> = []
    let calls = 0
    let running = true
    // Each failure is reported against the last kill or restart, to tell which one it followed.
    let lastEvent = { kind: 'start', at: Date.now() }
    const worker = async (index: number): Promise<void> => {
      for (let turn = index; running; turn++) {
        const replica = turn % 2
        const body = { user_id: `chaos_${randomUUID()}`, datafast_visitor_id: randomUUID(), plan: 'pro', seats: turn }
        const sent = { at: Date.now(), after: lastEvent }
        const { outcome } = await send(replicas[replica] as Replica, site.key, body)
        calls++
        const kind = outcome.startsWith('failure') ? 'failure' : outcome
        counts.set(kind, (counts.get(kind) ?? 0) + 1)
        if (outcome === 'ok') acknowledged.push({ body, replica })
        else if (outcome === 'unavailable') unavailableAt.push(Date.now())
        else if (kind === 'failure') {
          failures.push(`${outcome} (replica ${String(replica)}, sent ${String(sent.at - sent.after.at)} ms after a ${sent.after.kind}, ${lastEvent.kind} ${String(Date.now() - lastEvent.at)} ms before the failure)`)
          const group = `${outcome.replace(/^failure: /, '')} on replica ${String(replica)}, sent after a ${sent.after.kind}`
          failureGroups.set(group, (failureGroups.get(group) ?? 0) + 1)
        }
        if (outcome !== 'ok') await sleep(50)
      }
    }
    const load = Array.from({ length: options.workers }, async (_, index) => { await worker(index) })

    await sleep(1000)
    const rssStart = survivor.rssMiB()
    const events = [
      ...Array<string>(options.postgresKills).fill('postgres'),
      ...Array<string>(options.gatewayKills).fill('gateway'),
      ...Array<string>(options.replicaKills).fill('replica'),
      ...Array<string>(options.redisStops).fill('redis')
    ].sort(() => Math.random() - 0.5)
    const spacing = (options.seconds * 1000) / Math.max(1, events.length)
    const done = { postgres: 0, gateway: 0, replica: 0, redis: 0 }
    for (const event of events) {
      const slot = Date.now() + spacing
      await sleep(between(0, spacing / 3))
      lastEvent = { kind: `${event} kill`, at: Date.now() }
      if (event === 'postgres' || event === 'gateway') {
        kills.push({ part: event, at: Date.now() })
        await database.stop('SIGKILL', event)
        await sleep(between(1000, 3000))
        await database.start()
        done[event]++
      } else if (event === 'replica') {
        await victim.kill()
        await sleep(between(500, 2000))
        await victim.start()
        victim.downUntil = Date.now()
        done.replica++
      } else {
        await redis.kill()
        await sleep(between(2000, 4000))
        await redis.restart()
        done.redis++
      }
      lastEvent = { kind: `${event} restart`, at: Date.now() }
      log(`${new Date().toISOString()} ${event} killed and back (${String(done.postgres)} PostgreSQL, ${String(done.gateway)} gateway, ${String(done.replica)} replica, ${String(done.redis)} Redis); ${String(calls)} calls`)
      await sleep(Math.max(0, slot - Date.now()))
    }
    running = false
    await Promise.all(load)
    const rssEnd = survivor.rssMiB()

    // Every acknowledged call, re-sent to the other replica, must find its profile as it was acknowledged.
    const lostAnswers: string[] = []
    for (const [index, call] of acknowledged.entries()) {
      const { outcome, json } = await send(replicas[(call.replica + 1) % 2] as Replica, site.key, call.body)
      const action = (json as { data?: { action?: string } } | undefined)?.data?.action
      if (outcome !== 'ok' || action !== 'unchanged') lostAnswers.push(`#${String(index)} ${call.body.user_id as string}: ${outcome} ${String(action)}`)
    }
    // Every outage must show as a 503 soon after it began, whichever part died.
    const firstUnavailableMs: Record<DatabaseKill, number[]> = { postgres: [], gateway: [] }
    for (const [index, kill] of kills.entries()) {
      const first = unavailableAt.find((at) => at >= kill.at)
      const delay = first === undefined ? Number.POSITIVE_INFINITY : first - kill.at
      if (delay > ANSWER_WITHIN_MS) failures.push(`no 503 within ${String(ANSWER_WITHIN_MS)} ms of ${kill.part} kill #${String(index + 1)}`)
      else firstUnavailableMs[kill.part].push(delay)
    }
    if (rssEnd - rssStart > RSS_GROWTH_LIMIT_MIB) failures.push(`the surviving replica grew from ${String(rssStart)} to ${String(rssEnd)} MiB`)

    return {
      postgresKills: done.postgres,
      gatewayKills: done.gateway,
      replicaKills: done.replica,
      redisStops: done.redis,
      calls,
      ok: counts.get('ok') ?? 0,
      unavailable: counts.get('unavailable') ?? 0,
      refused: counts.get('refused') ?? 0,
      droppedByKill: counts.get('dropped-by-kill') ?? 0,
      failures,
      failureGroups: Object.fromEntries(failureGroups),
      firstUnavailableMs,
      acknowledged: acknowledged.length,
      lost: lostAnswers.length,
      lostAnswers,
      survivorRssMiB: { start: rssStart, end: rssEnd },
      wallSeconds: Math.round((Date.now() - began) / 1000)
    }
  } finally {
    await Promise.all(replicas.map(async (replica) => { await replica.kill() }))
    await redis.kill()
    await database.close()
    service.remove()
  }
}

/** The median and the longest of some delays, in seconds. */
function medianAndMax (delays: number[]): string {
  if (delays.length === 0) return '–'
  const sorted = [...delays].sort((a, b) => a - b)
  const seconds = (ms: number): string => (ms / 1000).toFixed(2)
  return `${seconds(sorted[Math.floor(sorted.length / 2)] ?? 0)} / ${seconds(sorted.at(-1) ?? 0)}`
}

/** The one table of a run, in Markdown. */
export function formatReport (report: ChaosReport): string {
  const rows: Array<[string, string | number]> = [
    ['PostgreSQL SIGKILLs (gateway up)', report.postgresKills],
    ['gateway SIGKILLs', report.gatewayKills],
    ['replica SIGKILLs', report.replicaKills],
    ['Redis stops', report.redisStops],
    ['calls', report.calls],
    ['200', report.ok],
    ['503 in the envelope', report.unavailable],
    ['refused by a killed replica', report.refused],
    ['in flight on a replica when it was killed', report.droppedByKill],
    ['first 503 after a PostgreSQL kill, s (median / max)', medianAndMax(report.firstUnavailableMs.postgres)],
    ['first 503 after a gateway kill, s (median / max)', medianAndMax(report.firstUnavailableMs.gateway)],
    ['anything else (500, hang over 5 s, an outage without a 503, …)', report.failures.length],
    ['acknowledged calls re-sent', report.acknowledged],
    ['acknowledged calls lost (must be 0)', report.lost],
    ['RSS of the replica never killed, MiB', `${String(report.survivorRssMiB.start)} → ${String(report.survivorRssMiB.end)}`],
    ['wall time, s', report.wallSeconds]
  ]
  return ['| | |', '| --- | ---: |', ...rows.map(([name, value]) => `| ${name} | ${String(value)} |`)].join('\n')
}
