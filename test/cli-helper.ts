import { PassThrough, Writable } from 'node:stream'
import { afterAll } from 'vitest'
import { buildApp, type App } from '../src/app.js'
import { runCli } from '../src/cli/program.js'
import { testConfig } from './helper.js'
import { runScript, type ScriptRun } from './run-script.js'

export type CliRun = ScriptRun

type Cli = (args: string[], env?: Record<string, string>, stdin?: string) => Promise<CliRun>

/** A stream that keeps what is written to it, as a pipe that is not a terminal would deliver it. */
function capture (): { stream: Writable, text: () => string } {
  const chunks: Buffer[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      chunks.push(chunk)
      done()
    }
  })
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') }
}

/** Runs the CLI in this process, as buildProgram on captured streams and the given environment. */
async function runInProcess (args: string[], env: Record<string, string | undefined>, stdin = ''): Promise<CliRun> {
  const stdout = capture()
  const stderr = capture()
  const input = new PassThrough()
  input.end(stdin)
  const code = await runCli({ stdout: stdout.stream, stderr: stderr.stream, stdin: input, env }, args)
  return { code, stdout: stdout.text(), stderr: stderr.text() }
}

/** An app and the CLI on one database, so that each can check what the other wrote; the database is dropped after the file's tests. */
export async function appWithCli (): Promise<{ app: App, cli: Cli, spawnCli: Cli }> {
  const config = testConfig()
  const app = await buildApp(config)
  await app.ready()
  afterAll(async () => {
    await app.mongo.db.dropDatabase()
    await app.close()
  })
  const envOf = (env: Record<string, string>): Record<string, string | undefined> => ({ ...process.env, MONGO_URL: config.MONGO_URL, ...env })
  return {
    app,
    cli: async (args, env = {}, stdin) => await runInProcess(args, envOf(env), stdin),
    spawnCli: async (args, env = {}, stdin) => await spawnEntry(args, envOf(env), stdin)
  }
}

/** Runs the real entry point, src/cli/index.ts, in a child process: what proves its wiring to the process. */
async function spawnEntry (args: string[], env: Record<string, string | undefined>, stdin?: string): Promise<CliRun> {
  return await runScript('src/cli/index.ts', args, { env, stdin, timeoutMs: 60_000 })
}
