import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { IdentifyClient, type IdentifyError } from '../src/index.js'
import { batchRequests, bodies, serveTestApp, singleRequests, storedUserIds, userIdsOf } from './helpers.js'

/**
 * shutdown() sends everything queued, waits for every call in flight, and
 * leaves nothing that keeps the process alive: a script that enqueues,
 * shuts down and ends loses no call.
 */
const { app, site, url, requests } = await serveTestApp()
afterAll(async () => { await app.close() })

describe('shutdown', () => {
  it('drains in-flight batches, queued calls and identify() calls, then refuses new ones', async () => {
    const errors: IdentifyError[] = []
    const client = new IdentifyClient({ url, key: site.key, flushAt: 10, flushInterval: 60_000, onError: (error) => { errors.push(error) } })
    const queued = bodies('drain', 25)
    const [single] = bodies('drain-single', 1)
    if (single === undefined) throw new Error('no body')
    for (const call of queued) client.enqueue(call)
    const identified = client.identify(single)
    // A batch of 10 is on its way, 15 wait, the single call is in flight.

    await client.shutdown()
    // Everything is answered and stored by the time shutdown() resolves.
    expect(client.queued).toBe(0)
    expect(requests.every((request) => request.status === 200)).toBe(true)
    expect(batchRequests(requests)).toHaveLength(3)
    expect(singleRequests(requests)).toHaveLength(1)
    expect(await storedUserIds(app, site)).toEqual(userIdsOf([...queued, single]))
    expect((await identified).action).toBe('created')
    expect(errors).toEqual([])

    // After shutdown: enqueue() drops (counted, reported), identify() rejects, a second shutdown() resolves.
    const [late] = bodies('late', 1)
    if (late === undefined) throw new Error('no body')
    expect(client.enqueue(late)).toBe(false)
    expect(client.dropped).toBe(1)
    expect(errors.map((error) => [error.kind, error.message])).toEqual([['dropped', 'The client is shut down']])
    await expect(client.identify(late)).rejects.toMatchObject({ kind: 'dropped' })
    await client.shutdown()
  })

  it('waits for an identify() call in flight even when nothing is queued', async () => {
    const client = new IdentifyClient({ url, key: site.key })
    const [lone] = bodies('drain-lone', 1)
    if (lone === undefined) throw new Error('no body')
    const identified = client.identify(lone)
    await client.shutdown()
    expect(await storedUserIds(app, site)).toContain('drain-lone-0')
    expect((await identified).action).toBe('created')
  })

  /** Runs the fixture script in a process of its own; kills it if it lingers (a timer or socket the client left alive would keep it running). */
  async function runScript (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string, startedAt: number, shutDownAt: number | undefined, exitedAt: number }> {
    const fixture = fileURLToPath(new URL('fixtures/enqueue-and-exit.ts', import.meta.url))
    const root = fileURLToPath(new URL('../../../', import.meta.url))
    const startedAt = Date.now()
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, url, site.key, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let shutDownAt: number | undefined
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      if (stdout.includes('shut down')) shutDownAt ??= Date.now()
    })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const killer = setTimeout(() => { child.kill('SIGKILL') }, 15_000)
    const [code] = await once(child, 'exit') as [number | null]
    clearTimeout(killer)
    return { code, stdout: stdout.trim(), stderr, startedAt, shutDownAt, exitedAt: Date.now() }
  }

  it('a process that enqueues N calls, calls shutdown() and ends, exits at once and has stored all N', async () => {
    const N = 250
    const run = await runScript(['child', String(N)])
    expect({ code: run.code, stdout: run.stdout, stderr: run.stderr }).toEqual({ code: 0, stdout: `enqueued ${String(N)}\nshut down`, stderr: '' })
    // Exits as soon as shutdown() resolved: nothing of the client (flush timer, sockets) holds the event loop.
    expect(run.exitedAt - (run.shutDownAt ?? 0)).toBeLessThan(1000)
    expect(run.exitedAt - run.startedAt).toBeLessThan(10_000)
    expect((await storedUserIds(app, site)).filter((id) => id.startsWith('child-'))).toHaveLength(N)
  }, 20_000)

  it('a queue left waiting (no shutdown) does not keep a process alive for flushInterval: its timer is unref\'d', async () => {
    const run = await runScript(['forgotten', '3', 'no-shutdown'])
    expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 0, stdout: 'enqueued 3' })
    // The fixture's flushInterval is 60 s; what was queued is lost, which is why shutdown() is there.
    expect(run.exitedAt - run.startedAt).toBeLessThan(10_000)
    expect((await storedUserIds(app, site)).filter((id) => id.startsWith('forgotten-'))).toEqual([])
  }, 20_000)
})
