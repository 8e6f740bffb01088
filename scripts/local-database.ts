import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import type { Readable, Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'

/**
 * The database for development, tests and benchmarks: the server at
 * MONGO_URL when it is set, otherwise FerretDB v1.24.2 on SQLite, started on a
 * free loopback port and stopped again with this process.
 */
export interface LocalDatabase {
  /** Connection string without a database name; see withDatabaseName. */
  url: string
  /** True when this process started FerretDB (and so may stop and start it). */
  embedded: boolean
  /** Stops the embedded server; the data directory is kept for start(). */
  stop: () => Promise<void>
  /** Starts the embedded server again on the same port and data. */
  start: () => Promise<void>
  /** SIGKILL, as a crash would stop it (chaos run); start() brings it back on the same data. */
  kill: () => Promise<void>
  /** Stops for good and removes a temporary data directory. */
  close: () => Promise<void>
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const sourceDir = join(root, 'tools', 'ferretdb')
const ferretdbBinary = join(root, '.cache', 'ferretdb', 'ferretdb')
const START_TIMEOUT_MS = 30_000

type Log = (message: string) => void
const stderrLog: Log = (message) => { process.stderr.write(`${message}\n`) }

/** True when the binary is older than any source of tools/ferretdb. */
function isStale (): boolean {
  const built = statSync(ferretdbBinary).mtimeMs
  return readdirSync(sourceDir).some((name) => statSync(join(sourceDir, name)).mtimeMs > built)
}

/** Builds the FerretDB stand-in when the binary is missing or stale; the Go build cache makes later builds fast. */
export function ensureFerretdbBinary (log: Log = stderrLog): string {
  if (existsSync(ferretdbBinary) && !isStale()) return ferretdbBinary
  log('Building FerretDB v1.24.2 from the Go module proxy (the first build compiles SQLite and takes a few minutes)...')
  const partial = `${ferretdbBinary}.${process.pid}.tmp`
  mkdirSync(dirname(ferretdbBinary), { recursive: true })
  const build = spawnSync('go', ['build', '-o', partial, '.'], { cwd: sourceDir, stdio: ['ignore', 'inherit', 'inherit'] })
  if (build.error !== undefined) {
    throw new Error(`Cannot build FerretDB: ${build.error.message}. Install Go 1.24 or later, or set MONGO_URL to a MongoDB server.`)
  }
  if (build.status !== 0) throw new Error(`Building FerretDB failed (go build exited with ${String(build.status)}); see the output above`)
  renameSync(partial, ferretdbBinary)
  log('FerretDB is built.')
  return ferretdbBinary
}

/** The same server with another database name in the path; query options are kept. */
export function withDatabaseName (url: string, name: string): string {
  const match = /^(mongodb(?:\+srv)?:\/\/[^/?]*)\/?([^?]*)(\?.*)?$/.exec(url)
  if (match === null) throw new Error('MONGO_URL is not a mongodb:// or mongodb+srv:// connection string')
  return `${match[1]}/${encodeURIComponent(name)}${match[3] ?? ''}`
}

type FerretdbProcess = ChildProcessByStdio<Writable, Readable, null>

async function launch (binary: string, dataDir: string, listen: string): Promise<{ child: FerretdbProcess, uri: string }> {
  const child = spawn(binary, ['--dir', dataDir, '--listen', listen], { stdio: ['pipe', 'pipe', 'inherit'] })
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

async function terminate (child: FerretdbProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => { resolveExit() }))
  child.kill(signal)
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

export interface StartDatabaseOptions {
  /** Keep the data here (development); a temporary directory otherwise, removed by close(). */
  dataDir?: string
  log?: Log
  /** Start FerretDB even when MONGO_URL is set, for tests that must stop their own server. */
  embedded?: boolean
}

export async function startDatabase (options: StartDatabaseOptions = {}): Promise<LocalDatabase> {
  const external = process.env.MONGO_URL
  if (options.embedded !== true && external !== undefined && external !== '') {
    const noop = async (): Promise<void> => {}
    return { url: external, embedded: false, stop: noop, start: noop, kill: noop, close: noop }
  }

  const binary = ensureFerretdbBinary(options.log)
  const temporary = options.dataDir === undefined
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'identify-ferretdb-'))
  mkdirSync(dataDir, { recursive: true })

  const first = await launch(binary, dataDir, '127.0.0.1:0')
  let child = first.child
  const address = new URL(first.uri).host
  // The child also stops by itself when this process dies: its stdin closes.
  const killOnExit = (): void => { child.kill('SIGTERM') }
  process.on('exit', killOnExit)

  return {
    // One connection per client: the stand-in's updates are not atomic across connections.
    url: `mongodb://${address}/?maxPoolSize=1`,
    embedded: true,
    stop: async () => { await terminate(child) },
    kill: async () => { await terminate(child, 'SIGKILL') },
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
