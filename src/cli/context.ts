import type { Readable } from 'node:stream'
import { loadConfig, type Config } from '../config.js'
import { AccountAdmin } from '../domain/account-admin.js'
import type { CredentialChange } from '../domain/credential-resolver.js'
import { publishCredentialChange } from '../fleet/credential-changes.js'
import { connectDatabase } from '../storage/database.js'
import { migrate } from '../storage/migrations/index.js'
import { createRepositories, ensureIndexes, type Repositories } from '../storage/repositories/index.js'

/** A stream the CLI writes to; a terminal's has isTTY and columns. */
export interface CliOutput extends NodeJS.WritableStream {
  isTTY?: boolean
  columns?: number
  hasColors?: () => boolean
}

/** Everything the CLI takes from its process, so that tests can run it in theirs. */
export interface CliIo {
  stdout: CliOutput
  stderr: CliOutput
  stdin: Readable
  env: Record<string, string | undefined>
}

/** A problem with what the operator asked for; printed without a stack trace. */
export class CliError extends Error {}

/** Ends the command with this exit code once it has printed everything. */
export class CliExit extends Error {
  constructor (readonly exitCode: number) {
    super(`exit code ${String(exitCode)}`)
  }
}

export interface CliContext {
  io: CliIo
  config: () => Config
  print: (result: object, ...lines: string[]) => void
  withRepositories: (options: { write: boolean }, run: (repositories: Repositories) => Promise<void>) => Promise<void>
  withAdmin: (options: { write: boolean }, run: (admin: AccountAdmin) => Promise<void>) => Promise<void>
  announce: (change: CredentialChange) => Promise<void>
}

export function createContext (io: CliIo, json: () => boolean): CliContext {
  let loaded: Config | undefined
  const config = (): Config => (loaded ??= loadConfig(io.env))
  const withRepositories: CliContext['withRepositories'] = async (options, run) => await connected(config(), options, run)
  return {
    io,
    config,
    print: (result, ...lines) => { io.stdout.write(json() ? `${JSON.stringify(result)}\n` : `${lines.join('\n')}\n`) },
    withRepositories,
    // The Account API's operations for the operator, who is bound by nothing but the account named.
    withAdmin: async (options, run) => {
      await withRepositories(options, async (repositories) => { await run(new AccountAdmin(repositories, config().MAX_TOKENS_PER_ACCOUNT)) })
    },
    announce: async (change) => { await announce(io, config(), change) }
  }
}

/** Connects for one command and always closes the client, so that nothing is left open when it ends. */
async function connected (config: Config, options: { write: boolean }, run: (repositories: Repositories) => Promise<void>): Promise<void> {
  if (config.MONGO_URL === '') {
    throw new CliError('MONGO_URL is not set: point it at your MongoDB (npm run dev prints the URL of its local database)')
  }
  const { client, db } = await connectDatabase(config.MONGO_URL, config.MONGO_TIMEOUT_MS)
  try {
    const repositories = createRepositories(db)
    if (options.write) {
      await ensureIndexes(repositories)
      // As the server does at start; its log says what ran, a command's output stays its answer.
      await migrate(db, { info: () => {}, debug: () => {} })
    }
    await run(repositories)
  } finally {
    await client.close()
  }
}

/** With REDIS_URL, every replica drops its cached copy at once; without Redis they see the change within AUTH_CACHE_TTL_MS. */
async function announce (io: CliIo, config: Config, change: CredentialChange): Promise<void> {
  if (await publishCredentialChange(config.REDIS_URL, change) === 'unreachable') {
    io.stderr.write('Warning: Redis is unreachable; running replicas see this change within AUTH_CACHE_TTL_MS.\n')
  }
}
