import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { pathToFileURL } from 'node:url'
import { MongoClient } from 'mongodb'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startDatabase, withDatabaseName } from '../tools/local-database.js'

/** PostgreSQL and gateway processes whose command line names this folder (postgres -D DIR/pgdata, the gateway's DIR/gateway config). */
function serverPids (dir: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', `${dir}/(pgdata|gateway)`], { encoding: 'utf8' }).trim().split('\n').map(Number)
  } catch {
    return []
  }
}

async function waitFor (condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (condition()) return true
    await new Promise((resolveWait) => setTimeout(resolveWait, 100))
  }
  return condition()
}

async function ping (url: string): Promise<void> {
  const client = new MongoClient(withDatabaseName(url, 'probe'), { serverSelectionTimeoutMS: 5000 })
  try {
    await client.db().command({ ping: 1 })
  } finally {
    await client.close()
  }
}

const newDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'identify-test-'))
  // As a checkout's folder is: the servers' own user must be able to enter it.
  chmodSync(dir, 0o755)
  onTestFinished(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

describe('local database', () => {
  it('starts DocumentDB on loopback ports with a generated password, answers, and leaves no process after close', async () => {
    const dataDir = newDir()
    const database = await startDatabase({ dataDir, embedded: true })
    expect(database.url).toMatch(/^mongodb:\/\/identify:[\w-]{24}@127\.0\.0\.1:\d+\/\?authMechanism=SCRAM-SHA-256&authSource=admin$/)
    const client = new MongoClient(withDatabaseName(database.url, 'probe'), { serverSelectionTimeoutMS: 5000 })
    await client.db().collection('things').insertOne({ ok: 1 })
    expect(await client.db().collection('things').countDocuments()).toBe(1)
    await client.close()
    // Without the password the gateway refuses.
    const wrong = database.url.replace(/:[\w-]{24}@/, ':wrong-password@')
    await expect(ping(wrong)).rejects.toThrow(/auth|invalid key/i)
    expect(serverPids(dataDir).length).toBeGreaterThanOrEqual(2)
    await database.close()
    expect(serverPids(dataDir)).toEqual([])
  })

  it('stops both servers and removes a temporary folder when the process that started them is killed outright', async () => {
    const script = `import { startDatabase } from './tools/local-database.ts'
const database = await startDatabase({ embedded: true })
console.log(JSON.stringify({ url: database.url, postgres: database.pid('postgres'), gateway: database.pid('gateway') }))
setInterval(() => {}, 1000)`
    const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    const [line] = await once(createInterface({ input: parent.stdout }), 'line') as [string]
    const started = JSON.parse(line) as { url: string, postgres: number, gateway: number }
    await ping(started.url)
    const dir = readFileSync(`/proc/${String(started.postgres)}/cmdline`, 'utf8').split('\0')[2]?.replace(/\/pgdata$/, '') ?? ''
    expect(dir).toMatch(/identify-db-/)
    parent.kill('SIGKILL')
    const alive = (pid: number): boolean => existsSync(`/proc/${String(pid)}`)
    expect(await waitFor(() => !alive(started.postgres) && !alive(started.gateway), 15_000)).toBe(true)
    expect(await waitFor(() => serverPids(dir).length === 0 && !existsSync(dir), 15_000)).toBe(true)
  })

  it('keeps a kept data folder on its port and password across restarts, and moves only when that port is taken', async () => {
    const dataDir = newDir()
    const messages: string[] = []
    const restart = async (): Promise<string> => {
      const database = await startDatabase({ dataDir, embedded: true, log: (message) => { messages.push(message) } })
      onTestFinished(database.close)
      await ping(database.url)
      await database.close()
      return database.url
    }

    const first = await restart()
    expect(await restart()).toBe(first)
    expect(messages.join('\n')).not.toMatch(/taken/)

    const squatter = createServer().listen(Number(new URL(first).port), '127.0.0.1')
    onTestFinished(() => { squatter.close() })
    await once(squatter, 'listening')
    const moved = await restart()
    expect(new URL(moved).port).not.toBe(new URL(first).port)
    expect(new URL(moved).password).toBe(new URL(first).password)
    expect(messages.join('\n')).toMatch(/taken/)
    expect(await restart()).toBe(moved)
  })

  it('npm run dev stops the service and both servers on Ctrl-C, and keeps its port, credentials and demo key', async () => {
    const cwd = newDir()
    const root = resolve(import.meta.dirname, '..')
    const port = await new Promise<number>((resolvePort) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = probe.address() as { port: number }
        probe.close(() => { resolvePort(free) })
      })
    })
    const runDev = async (): Promise<string> => {
      const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), LOG_LEVEL: 'warn' }
      delete env.MONGO_URL
      // Run from another folder, so that its .data/ is this test's; tsx by path, since that folder has no node_modules.
      const tsx = pathToFileURL(join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href
      const dev = spawn(process.execPath, ['--import', tsx, join(root, 'scripts', 'dev.ts')], { cwd, env, stdio: ['ignore', 'pipe', 'inherit'] })
      let output = ''
      const lines = createInterface({ input: dev.stdout })
      await new Promise<void>((resolveReady) => {
        lines.on('line', (line) => {
          output += `${line}\n`
          if (line.startsWith('MONGO_URL=')) resolveReady()
        })
      })
      const dataDir = join(cwd, '.data', 'documentdb')
      expect(serverPids(dataDir).length).toBeGreaterThanOrEqual(2)
      dev.kill('SIGINT')
      await once(dev, 'exit')
      expect(output).toMatch(/Stopped\./)
      expect(serverPids(dataDir)).toEqual([])
      return output.split('\n').filter((line) => /^(Demo website|MONGO_URL=)/.test(line)).join('\n')
    }
    const first = await runDev()
    expect(first).toMatch(/key df_/)
    expect(await runDev()).toBe(first)
  }, 120_000)
})
