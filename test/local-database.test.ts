import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MongoClient } from 'mongodb'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startDatabase, withDatabaseName } from '../scripts/local-database.js'

function ferretdbPids (dataDir: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', `ferretdb --dir ${dataDir}`], { encoding: 'utf8' }).trim().split('\n').map(Number)
  } catch {
    return []
  }
}

async function waitFor (condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (condition()) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return condition()
}

describe('local database', () => {
  it('starts FerretDB on a loopback port, answers, and leaves no process after close', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'identify-test-'))
    const database = await startDatabase({ dataDir, embedded: true })
    expect(database.url).toMatch(/^mongodb:\/\/127\.0\.0\.1:\d+\/\?maxPoolSize=1$/)
    const client = new MongoClient(withDatabaseName(database.url, 'probe'), { serverSelectionTimeoutMS: 3000 })
    await client.db().collection('things').insertOne({ ok: 1 })
    expect(await client.db().collection('things').countDocuments()).toBe(1)
    await client.close()
    expect(ferretdbPids(dataDir)).toHaveLength(1)
    await database.close()
    expect(ferretdbPids(dataDir)).toEqual([])
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('stops FerretDB when the process that started it is killed outright', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'identify-test-'))
    const script = `import { startDatabase } from './scripts/local-database.ts'
await startDatabase({ dataDir: ${JSON.stringify(dataDir)}, embedded: true })
console.log('up')
setInterval(() => {}, 1000)`
    const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    await once(parent.stdout, 'data')
    expect(ferretdbPids(dataDir)).toHaveLength(1)
    parent.kill('SIGKILL')
    expect(await waitFor(() => ferretdbPids(dataDir).length === 0, 5000)).toBe(true)
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('keeps a kept data directory on its port across restarts, and moves only when that port is taken', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'identify-test-'))
    onTestFinished(() => { rmSync(dataDir, { recursive: true, force: true }) })
    const messages: string[] = []
    const restart = async (): Promise<string> => {
      const database = await startDatabase({ dataDir, embedded: true, log: (message) => { messages.push(message) } })
      onTestFinished(database.close)
      const client = new MongoClient(withDatabaseName(database.url, 'probe'), { serverSelectionTimeoutMS: 3000 })
      await client.db().command({ ping: 1 })
      await client.close()
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
    expect(moved).not.toBe(first)
    expect(messages.join('\n')).toMatch(/taken/)
    expect(await restart()).toBe(moved)
  })
})

describe('the stand-in\'s lookups by _id', () => {
  it('search an index instead of scanning the table', async () => {
    const database = await startDatabase({ embedded: true })
    const client = new MongoClient(withDatabaseName(database.url, 'plans'), { serverSelectionTimeoutMS: 3000 })
    try {
      const profiles = client.db().collection('profiles')
      await profiles.insertMany(Array.from({ length: 100 }, (_, index) => ({ n: index })))
      // The stand-in's connections see the added index from their next write on.
      const plan = async () => {
        await profiles.insertOne({ n: -1 })
        return JSON.stringify(await client.db().command({ explain: { find: 'profiles', filter: { _id: 'some-id' } } }))
      }
      expect(await waitForAsync(async () => (await plan()).includes('USING INDEX'), 5000)).toBe(true)
    } finally {
      await client.close()
      await database.close()
    }
  })
})

async function waitForAsync (condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await condition()) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}
