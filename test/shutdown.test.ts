import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { connectDatabase, type Database } from '../src/storage/database.js'
import { createRepositories, ensureIndexes, type Repositories } from '../src/storage/repositories/index.js'
import { testDatabaseUrl } from './helper.js'

/**
 * Graceful shutdown of the real server over a real socket: on SIGTERM it
 * stops accepting connections, finishes the requests in flight, and exits 0;
 * SHUTDOWN_GRACE_MS bounds how long it waits for them.
 */

type Server = ChildProcessByStdio<null, Readable, Readable>

interface Running {
  child: Server
  host: string
  port: number
  address: string
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null, at: number }>
  /** What the server wrote to stdout and stderr so far, for failure messages. */
  output: () => string
}

const children: Server[] = []

/** Runs src/server.ts the way `npm start` runs dist/server.js, and waits for its 'Server listening at' line. */
async function startServer (env: Record<string, string>): Promise<Running> {
  const inherited = { ...process.env }
  delete inherited.MONGO_URL
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: { ...inherited, NODE_ENV: 'production', LOG_LEVEL: 'info', PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0', PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  children.push(child)
  let stderr = ''
  const logged: string[] = []
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null, at: number }>((resolve) => {
    child.once('exit', (code, signal) => { resolve({ code, signal, at: Date.now() }) })
  })
  const lines = createInterface({ input: child.stdout })
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`the server did not listen within 20 s: ${stderr}`)) }, 20_000)
    void exited.then(({ code }) => { reject(new Error(`the server exited with ${String(code)} before it listened: ${stderr}`)) })
    // Every line is read, also after this one, so that the pipe never fills up.
    lines.on('line', (line) => {
      logged.push(line)
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line)
      if (match?.[1] !== undefined) {
        clearTimeout(timer)
        resolve(match[1])
      }
    })
  })
  const url = new URL(address)
  const output = (): string => `stdout:\n${logged.join('\n')}\nstderr:\n${stderr}`
  return { child, host: url.hostname, port: Number(url.port), address, exited, output }
}

/** Whether a new TCP connection to the address is refused (true) or accepted (false). */
async function isRefused (host: string, port: number): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
    const socket = connect({ host, port })
    socket.once('connect', () => { socket.destroy(); resolve(false) })
    socket.once('error', (error: NodeJS.ErrnoException) => { socket.destroy(); resolve(error.code === 'ECONNREFUSED') })
  })
}

/** Polls until a new connection is refused, for at most `ms`; returns when it was first refused, or undefined. */
async function waitForRefusal (host: string, port: number, ms: number): Promise<number | undefined> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await isRefused(host, port)) return Date.now()
    await sleep(20)
  }
  return undefined
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

let url: string
let database: Database
let repositories: Repositories
let websiteId: string
let key: string

beforeAll(async () => {
  url = testDatabaseUrl()
  database = await connectDatabase(url, 3000)
  repositories = createRepositories(database.db)
  await ensureIndexes(repositories)
  const accountId = await repositories.websites.createAccount('Shutdown account')
  websiteId = await repositories.websites.createWebsite({ accountId, domain: 'shutdown.example.com', cookieless: false })
  key = (await repositories.credentials.createWebsiteKey({ websiteId, name: 'shutdown' })).key
})

afterAll(async () => {
  await database.db.dropDatabase()
  await database.client.close()
})

afterEach(() => {
  // A server left running by a failed test is stopped; only the processes this file started.
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
})

describe('graceful shutdown', () => {
  it('on SIGTERM finishes every request in flight, refuses new connections, and exits 0', async () => {
    const server = await startServer({ MONGO_URL: url, SHUTDOWN_GRACE_MS: '10000' })

    const userIds = Array.from({ length: 30 }, (_, i) => `shutdown_user_${String(i)}_${randomUUID().slice(0, 8)}`)
    let finished = 0
    let firstAnswer: () => void = () => {}
    const answered = new Promise<void>((resolve) => { firstAnswer = resolve })
    const calls = userIds.map(async (userId) => {
      try {
        const response = await fetch(`${server.address}/api/v1/identify`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ user_id: userId, datafast_visitor_id: randomUUID(), plan: 'pro', seats: 3 })
        })
        const text = await response.text()
        return { userId, status: response.status, text }
      } catch (error) {
        return { userId, status: 0, text: String(error) }
      } finally {
        finished++
        firstAnswer()
      }
    })

    // The requests are out and the server is working on them: signal now.
    await answered
    const finishedAtSignal = finished
    const signalledAt = Date.now()
    server.child.kill('SIGTERM')

    // A new connection after the signal is refused.
    const refusedAt = await waitForRefusal(server.host, server.port, 5000)
    expect(refusedAt, 'a new connection after SIGTERM was still accepted 5 s later').toBeDefined()

    const results = await Promise.all(calls)
    const exit = await server.exited

    expect(finishedAtSignal, 'requests still in flight when the signal was sent').toBeLessThan(userIds.length)
    for (const result of results) {
      expect(result.status, `${result.userId}: ${result.text}`).toBe(200)
      const json = JSON.parse(result.text) as { status: string, data: { action: string } }
      expect(json.status).toBe('success')
      expect(json.data.action).toBe('created')
    }
    for (const userId of userIds) {
      const profile = await repositories.profiles.findProfile(websiteId, userId)
      expect(profile, userId).not.toBeNull()
    }

    // Once the last response is out nothing is left to wait for: the process exits 0, not killed by the grace timer.
    const exitMessage = `exit ${String(exit.code)} ${String(exit.at - signalledAt)} ms after SIGTERM\n${server.output()}`
    expect(exit.signal, exitMessage).toBeNull()
    expect(exit.code, exitMessage).toBe(0)
  }, 60_000)

  it('SHUTDOWN_GRACE_MS bounds the wait for a request that never finishes', async () => {
    const graceMs = 3000
    const server = await startServer({ MONGO_URL: url, SHUTDOWN_GRACE_MS: String(graceMs) })

    // A client that sends the headers and part of the body, then nothing more: the request stays in flight.
    const slow: Socket = connect({ host: server.host, port: server.port })
    slow.on('error', () => {})
    await new Promise<void>((resolve) => slow.once('connect', () => { resolve() }))
    slow.write([
      'POST /api/v1/identify HTTP/1.1',
      `Host: ${server.host}:${String(server.port)}`,
      `Authorization: Bearer ${key}`,
      'Content-Type: application/json',
      'Content-Length: 1000',
      '',
      '{"user_id":"slow'
    ].join('\r\n'))
    await sleep(500)

    const signalledAt = Date.now()
    server.child.kill('SIGTERM')

    // While it waits for the slow request, the server accepts no new connection.
    const refusedAt = await waitForRefusal(server.host, server.port, 3000)
    expect(refusedAt, 'a new connection after SIGTERM was still accepted').toBeDefined()

    const exit = await server.exited
    slow.destroy()
    expect(exit.signal, 'the process was killed by the signal instead of closing').toBeNull()
    // It waited for the request in flight up to the grace period, and not much longer.
    expect(exit.at - signalledAt, 'the server exited before the grace period although a request was in flight').toBeGreaterThanOrEqual(graceMs - 100)
    expect(exit.at - signalledAt).toBeLessThan(graceMs + 2000)
  }, 30_000)
})
