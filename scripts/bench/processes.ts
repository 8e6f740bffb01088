import { fork, spawn, type ChildProcess, type Serializable } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { ConfigSchema } from '../../src/config.js'

/** The repository root: children run from here, whatever the caller's directory. */
export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** A failure with a message meant for the person running the bench, printed without a stack. */
export class BenchError extends Error {
  override name = 'BenchError'
}

/** Every child the bench starts, so that a failure or Ctrl-C can stop them all. */
const children = new Set<ChildProcess>()
// Last resort if the bench dies without cleaning up: no server may outlive it.
process.on('exit', () => { for (const child of children) child.kill('SIGKILL') })

function track<T extends ChildProcess> (child: T): T {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

const exited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null

/** SIGTERM, then SIGKILL if the child has not exited after `graceMs`. */
export async function stopChild (child: ChildProcess, graceMs = 5000): Promise<void> {
  if (exited(child)) return
  const done = new Promise<void>((resolveExit) => child.once('exit', () => { resolveExit() }))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await done
  clearTimeout(timer)
}

export async function stopAllChildren (): Promise<void> {
  await Promise.all([...children].map(async (child) => { await stopChild(child) }))
}

/** The last lines a child printed, to show when it fails. */
class OutputTail {
  private readonly lines: string[] = []

  attach (stream: Readable | null): void {
    if (stream === null) return
    createInterface({ input: stream }).on('line', (line) => {
      this.lines.push(line)
      if (this.lines.length > 40) this.lines.shift()
    })
  }

  toString (): string {
    return this.lines.length === 0 ? '(no output)' : this.lines.map((line) => `  | ${line}`).join('\n')
  }
}

/** A port nothing listens on right now (the OS picks it). */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => { resolveListen() })
  })
  const address = server.address()
  await new Promise<void>((resolveClose) => server.close(() => { resolveClose() }))
  if (address === null || typeof address === 'string') throw new BenchError('could not find a free port')
  return address.port
}

export interface RunningServer {
  child: ChildProcess
  pid: number
  baseUrl: string
}

/**
 * Starts a Node process that serves HTTP on env.PORT and waits until its
 * /readyz answers 200 (the database answers a ping). Its output is kept
 * back, and shown only if it fails to become ready.
 */
export async function startServer (label: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<RunningServer> {
  const child = track(spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] }))
  const tail = new OutputTail()
  tail.attach(child.stdout)
  tail.attach(child.stderr)
  if (child.pid === undefined) throw new BenchError(`could not start the ${label}`)
  const baseUrl = `http://${String(env.HOST)}:${String(env.PORT)}`

  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (exited(child)) {
      throw new BenchError(`the ${label} exited (code ${String(child.exitCode ?? child.signalCode)}) before it was ready. Its last output:\n${tail.toString()}`)
    }
    try {
      const response = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(1000) })
      if (response.ok) return { child, pid: child.pid, baseUrl }
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stopChild(child)
      throw new BenchError(`the ${label} did not become ready within ${timeoutMs / 1000} s (GET ${baseUrl}/readyz). Its last output:\n${tail.toString()}`)
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 100))
  }
}

/** Builds the service as npm start runs it, and starts dist/server.js on a free port against the database (extra node flags first). */
export async function startBuiltServer (mongoUrl: string, nodeFlags: string[] = []): Promise<RunningServer> {
  await runCommand('npm run build', 'npm', ['run', 'build', '--silent'])
  return await startServer('server (node dist/server.js)', [...nodeFlags, 'dist/server.js'], serverEnv(await freePort(), mongoUrl))
}

/**
 * Waits until the server answers /readyz (a ping of its database) after a
 * run, so that a server or database still busy, hung or gone shows before
 * the next run rather than in its figures. Returns the seconds it took.
 */
export async function drain (server: RunningServer, timeoutMs = 180_000): Promise<number> {
  const started = Date.now()
  for (;;) {
    try {
      const response = await fetch(`${server.baseUrl}/readyz`, { signal: AbortSignal.timeout(timeoutMs) })
      if (response.ok) return (Date.now() - started) / 1000
    } catch {
      // Timed out or refused: judged below.
    }
    if (exited(server.child)) throw new BenchError(`the server exited (code ${String(server.child.exitCode ?? server.child.signalCode)}) during the run`)
    if (Date.now() - started > timeoutMs) throw new BenchError(`the server was still busy ${timeoutMs / 1000} s after the run ended (GET /readyz did not answer 200)`)
    await new Promise((resolveWait) => setTimeout(resolveWait, 500))
  }
}

/** Runs a command to completion, its output shown only if it fails. */
export async function runCommand (label: string, command: string, args: string[]): Promise<void> {
  const child = track(spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] }))
  const tail = new OutputTail()
  tail.attach(child.stdout)
  tail.attach(child.stderr)
  const code = await new Promise<number | null>((resolveExit, reject) => {
    child.once('error', reject)
    child.once('exit', (exitCode) => { resolveExit(exitCode) })
  })
  if (code !== 0) throw new BenchError(`${label} failed (exit code ${String(code)}). Its last output:\n${tail.toString()}`)
}

/**
 * Runs scripts/bench/<file> in a child process with tsx and returns the one
 * message it sends back. Its output goes to stderr, so that stdout keeps only
 * the report.
 */
export async function runWorker<T> (file: string, input: Serializable): Promise<T> {
  const child = track(fork(join(root, 'scripts', 'bench', file), [], {
    cwd: root,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 2, 2, 'ipc']
  }))
  const messages: T[] = []
  // The first message says the child is listening; the second is its result.
  child.on('message', (message) => {
    if (message === 'ready') child.send(input)
    else messages.push(message as T)
  })
  const code = await new Promise<number | string | null>((resolveExit, reject) => {
    child.once('error', reject)
    child.once('exit', (exitCode, signal) => { resolveExit(exitCode ?? signal) })
  })
  const [result] = messages
  if (result === undefined) throw new BenchError(`scripts/bench/${file} ended (${String(code)}) without a result; see its output above`)
  return result
}

/** The process's resident memory now, in MiB, or null once it has exited. */
export const residentMib = (pid: number): number | null => statusField(pid, 'VmRSS')

function statusField (pid: number, field: 'VmHWM' | 'VmRSS'): number | null {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match?.[1] === undefined ? null : Number(match[1]) / 1024
  } catch {
    return null
  }
}

/**
 * Peak resident memory of a process during one run, in MiB. The kernel's
 * high-water mark (VmHWM) is reset at the start (clear_refs 5) and read at
 * the end, so short spikes count; where the reset is not allowed, VmRSS
 * polled every 200 ms stands in.
 */
export class PeakMemory {
  private polled = 0
  private resetWorked = false
  private timer: NodeJS.Timeout | null = null

  constructor (private readonly pid: number) {}

  start (): void {
    try {
      writeFileSync(`/proc/${this.pid}/clear_refs`, '5')
      this.resetWorked = true
    } catch {
      this.resetWorked = false
    }
    this.polled = residentMib(this.pid) ?? 0
    this.timer = setInterval(() => { this.polled = Math.max(this.polled, residentMib(this.pid) ?? 0) }, 200)
    this.timer.unref()
  }

  /** The peak since start(); stopping twice is harmless. */
  stop (): number | null {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    const peak = this.resetWorked ? statusField(this.pid, 'VmHWM') : null
    return peak ?? (this.polled > 0 ? this.polled : null)
  }
}

/** The environment of the server under test: production mode, defaults for everything but the limiter's budget. */
export function serverEnv (port: number, mongoUrl: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const name of Object.keys(ConfigSchema.properties)) Reflect.deleteProperty(env, name)
  // Tracing is on only where a run asks for it (http-ceiling-traced), whatever the shell exports.
  for (const name of Object.keys(env).filter((key) => key.startsWith('OTEL_'))) Reflect.deleteProperty(env, name)
  return {
    ...env,
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: String(port),
    MONGO_URL: mongoUrl,
    // The bench sends far more than a real client's budget; the limiter itself still runs on every call.
    RATE_LIMIT_MAX: '1000000000'
  }
}
