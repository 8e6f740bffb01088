import { execFile } from 'node:child_process'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { afterAll } from 'vitest'
import { buildApp, type App } from '../src/app.js'
import { testConfig } from './helper.js'

const root = fileURLToPath(new URL('..', import.meta.url))

export interface CliRun { code: number | null, stdout: string, stderr: string }

// Each spawn compiles the CLI with tsx and costs about a second of CPU: running more at once than there are cores only makes all of them slow.
const slots = { free: availableParallelism(), waiting: [] as Array<() => void> }

/**
 * An app and the real command line on one database, so that the app can
 * check what the CLI wrote (and the CLI what the app wrote); the database is
 * dropped after the file's tests.
 */
export async function appWithCli (): Promise<{ app: App, cli: (args: string[], env?: Record<string, string>, stdin?: string) => Promise<CliRun> }> {
  const config = testConfig()
  const app = await buildApp(config)
  await app.ready()
  afterAll(async () => {
    await app.mongo.db.dropDatabase()
    await app.close()
  })

  /** Runs the real CLI in a child process, against the test database unless env says otherwise, with `stdin` as its standard input. */
  async function cli (args: string[], env: Record<string, string> = {}, stdin?: string): Promise<CliRun> {
    if (slots.free > 0) slots.free--
    else await new Promise<void>((resolve) => slots.waiting.push(resolve))
    try {
      return await new Promise((resolve) => {
        const child = execFile(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
          cwd: root,
          env: { ...process.env, MONGO_URL: config.MONGO_URL, ...env },
          timeout: 60_000,
          maxBuffer: 64 * 1024 * 1024
        }, (error, stdout, stderr) => {
          resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr })
        })
        if (stdin !== undefined) child.stdin?.end(stdin)
      })
    } finally {
      const next = slots.waiting.shift()
      if (next === undefined) slots.free++
      else next()
    }
  }
  return { app, cli }
}
