import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import type { Readable, Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'

/**
 * The database for development, tests and benchmarks: the server at
 * MONGO_URL when it is set, otherwise FerretDB v1.24.2 on SQLite, started on a
 * loopback port (a free one, or for kept data the one it had last time) and
 * stopped again with this process.
 */
export interface LocalDatabase {
  /** Connection string without a database name; see withDatabaseName. */
  url: string
  /** True when this process started FerretDB (and so may stop and start it). */
  embedded: boolean
  /**
   * Stops the embedded server, by SIGTERM (FerretDB then serves its open
   * connections a few seconds more; SIGKILL follows at 5 s) or by SIGKILL at
   * once; the data directory is kept for start().
   */
  stop: (signal?: 'SIGTERM' | 'SIGKILL') => Promise<void>
  /** Starts the embedded server again on the same port and data. */
  start: () => Promise<void>
  /** Stops for good and removes a temporary data directory. */
  close: () => Promise<void>
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const sourceDir = join(root, 'tools', 'ferretdb')
const ferretdbBinary = join(root, '.cache', 'ferretdb', 'ferretdb')
const START_TIMEOUT_MS = 30_000

// One helper for connection strings, here too for the scripts and tests that name a database on this server.
export { withDatabaseName } from '../src/mongo-url.js'

type Log = (message: string) => void
const stderrLog: Log = (message) => { process.stderr.write(`${message}\n`) }

/** True when the binary is older than any source of tools/ferretdb. */
function isStale (): boolean {
  const built = statSync(ferretdbBinary).mtimeMs
  return readdirSync(sourceDir).some((name) => statSync(join(sourceDir, name)).mtimeMs > built)
}

/** 42s, or 3m 05s. */
function formatElapsed (ms: number): string {
  const seconds = Math.round(ms / 1000)
  return seconds < 60 ? `${String(seconds)}s` : `${String(Math.floor(seconds / 60))}m ${String(seconds % 60).padStart(2, '0')}s`
}

/**
 * Runs `go build -v`, whose package lines stream to stderr with the elapsed
 * time; on a terminal a status line also ticks through long packages (SQLite).
 */
async function goBuild (output: string): Promise<void> {
  const started = Date.now()
  const elapsed = (): string => formatElapsed(Date.now() - started)
  const tty = process.stderr.isTTY
  const status = (): void => { if (tty) process.stderr.write(`\r\x1b[K  building FerretDB… ${elapsed()}`) }
  const ticker = setInterval(status, 1000)
  const child = spawn('go', ['build', '-v', '-o', output, '.'], { cwd: sourceDir, stdio: ['ignore', 'inherit', 'pipe'] })
  createInterface({ input: child.stderr }).on('line', (line) => {
    process.stderr.write(`${tty ? '\r\x1b[K' : ''}  [${elapsed()}] ${line}\n`)
    status()
  })
  try {
    const [code] = await once(child, 'close') as [number | null]
    if (code !== 0) throw new Error(`Building FerretDB failed (go build exited with ${String(code)}); see the output above`)
  } catch (error) {
    const spawnError = error as NodeJS.ErrnoException
    if (spawnError.code !== 'ENOENT') throw error
    throw new Error(`Cannot build FerretDB: ${spawnError.message}. Install Go 1.24 or later, or set MONGO_URL to a MongoDB server.`)
  } finally {
    clearInterval(ticker)
    if (tty) process.stderr.write('\r\x1b[K')
  }
}

/** Builds the FerretDB stand-in when the binary is missing or stale; the Go build cache makes later builds fast. */
export async function ensureFerretdbBinary (log: Log = stderrLog): Promise<string> {
  if (existsSync(ferretdbBinary) && !isStale()) return ferretdbBinary
  log('Building FerretDB v1.24.2 from the Go module proxy (the first build compiles SQLite and takes a few minutes)...')
  const started = Date.now()
  const partial = `${ferretdbBinary}.${String(process.pid)}.tmp`
  mkdirSync(dirname(ferretdbBinary), { recursive: true })
  await goBuild(partial)
  renameSync(partial, ferretdbBinary)
  log(`FerretDB is built (${formatElapsed(Date.now() - started)}).`)
  return ferretdbBinary
}

type FerretdbProcess = ChildProcessByStdio<Writable, Readable, null>

async function launch (binary: string, dataDir: string, listen: string): Promise<{ child: FerretdbProcess, uri: string }> {
  // Detached, so that Ctrl-C reaches only this process, which closes its clients before it stops the database.
  const child = spawn(binary, ['--dir', dataDir, '--listen', listen], { stdio: ['pipe', 'pipe', 'inherit'], detached: true })
  const lines = createInterface({ input: child.stdout })
  const uri = await new Promise<string>((resolveUri, reject) => {
    const timer = setTimeout(() => { reject(new Error(`FerretDB did not start within ${START_TIMEOUT_MS} ms`)) }, START_TIMEOUT_MS)
    child.once('error', reject)
    child.once('exit', (code) => { reject(new Error(`FerretDB exited with ${String(code)} before it listened`)) })
    lines.once('line', (line) => {
      clearTimeout(timer)
      try {
        resolveUri((JSON.parse(line) as { uri: string }).uri)
      } catch {
        reject(new Error(`FerretDB printed an unexpected line: ${line}`))
      }
    })
  })
  lines.close()
  child.removeAllListeners('exit')
  return { child, uri }
}

async function terminate (child: FerretdbProcess, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => { resolveExit() }))
  child.kill(signal)
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

/** Where a kept data directory remembers its port, so that a MONGO_URL printed by one start works after the next. */
const PORT_FILE = 'port'

async function isFree (port: number): Promise<boolean> {
  const probe = createServer()
  try {
    probe.listen(port, '127.0.0.1')
    await once(probe, 'listening')
    return true
  } catch {
    return false
  } finally {
    probe.close()
    await once(probe, 'close')
  }
}

/** The port the data directory listened on last time when it is free again; 0 (any free port) otherwise. */
async function previousPort (portFile: string, log: Log): Promise<number> {
  if (!existsSync(portFile)) return 0
  const port = Number(readFileSync(portFile, 'utf8').trim())
  if (!Number.isInteger(port) || port < 1 || port > 65535) return 0
  if (await isFree(port)) return port
  log(`Port ${String(port)} of the local database is taken, so it moves to a new one: a MONGO_URL exported earlier needs the new port.`)
  return 0
}

export interface StartDatabaseOptions {
  /** Keep the data, and the port, here (development); a temporary directory otherwise, removed by close(). */
  dataDir?: string
  log?: Log
  /** Start FerretDB even when MONGO_URL is set, for tests that must stop their own server. */
  embedded?: boolean
}

export async function startDatabase (options: StartDatabaseOptions = {}): Promise<LocalDatabase> {
  const external = process.env.MONGO_URL
  if (options.embedded !== true && external !== undefined && external !== '') {
    const noop = async (): Promise<void> => {}
    return { url: external, embedded: false, stop: noop, start: noop, close: noop }
  }

  const binary = await ensureFerretdbBinary(options.log)
  const temporary = options.dataDir === undefined
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'identify-ferretdb-'))
  mkdirSync(dataDir, { recursive: true })

  const portFile = join(dataDir, PORT_FILE)
  const port = temporary ? 0 : await previousPort(portFile, options.log ?? stderrLog)
  const first = await launch(binary, dataDir, `127.0.0.1:${String(port)}`)
  let child = first.child
  const { host: address, port: listening } = new URL(first.uri)
  if (!temporary) writeFileSync(portFile, `${listening}\n`)
  // The child also stops by itself when this process dies: its stdin closes.
  const killOnExit = (): void => { child.kill('SIGTERM') }
  process.on('exit', killOnExit)

  return {
    // One connection per client: the stand-in's updates are not atomic across connections.
    url: `mongodb://${address}/?maxPoolSize=1`,
    embedded: true,
    stop: async (signal) => { await terminate(child, signal) },
    start: async () => {
      if (child.exitCode === null && child.signalCode === null) return
      child = (await launch(binary, dataDir, address)).child
    },
    close: async () => {
      await terminate(child)
      process.off('exit', killOnExit)
      if (temporary) rmSync(dataDir, { recursive: true, force: true })
    }
  }
}
