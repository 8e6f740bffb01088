import { once } from 'node:events'
import { Command, CommanderError, InvalidArgumentError } from 'commander'
import { ConfigError, loadConfig } from './config.js'
import { connectDatabase } from './database.js'
import { isDatabaseUnavailable } from './repositories/mongo-errors.js'
import { checkPermissions } from './domain/credentials.js'
import { DomainError } from './domain/errors.js'
import { canonicalObjectId } from './domain/ids.js'
import { checkPageLimit, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX } from './domain/profiles.js'
import { createRepositories, ensureIndexes, type Repositories } from './repositories/index.js'
import { profileIdFor } from './repositories/profiles.js'

/** A problem with what the operator asked for; printed without a stack trace. */
class CliError extends Error {}

const parseId = (value: string): string => {
  const id = canonicalObjectId(value)
  if (id === null) throw new InvalidArgumentError('Expected an id of 24 hex characters.')
  return id
}

const parseLimit = (value: string): number => {
  try {
    return checkPageLimit(value)
  } catch (error) {
    if (error instanceof DomainError) throw new InvalidArgumentError(`Expected a whole number from 1 to ${PAGE_LIMIT_MAX}.`)
    throw error
  }
}

const parseText = (value: string): string => {
  if (value.trim() === '') throw new InvalidArgumentError('Expected a non-empty value.')
  return value.trim()
}

const parseList = (value: string): string[] => {
  const items = value.split(',').map((item) => item.trim())
  if (items.includes('')) throw new InvalidArgumentError('Expected a comma-separated list of non-empty values.')
  return [...new Set(items)]
}

/** The same rule as the Account API's: a non-empty list of known permissions. */
const parsePermissions = (value: string): string[] => {
  try {
    return checkPermissions(parseList(value))
  } catch (error) {
    if (error instanceof DomainError) throw new InvalidArgumentError(`${error.message}.`)
    throw error
  }
}

const parseIds = (value: string): string[] => [...new Set(parseList(value).map(parseId))]

const parseFutureDate = (value: string): Date => {
  // Date.parse also takes free-form text and rolls 2030-02-30 over into March, so check the shape and the calendar too;
  // a time must carry its zone, or the expiry would depend on the machine that ran the command.
  const match = /^(\d{4})-(\d{2})-(\d{2})(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))?$/.exec(value)
  const date = new Date(value)
  const calendarDay = match === null ? null : new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])))
  if (calendarDay === null || Number.isNaN(date.getTime()) || calendarDay.toISOString().slice(0, 10) !== value.slice(0, 10)) {
    throw new InvalidArgumentError('Expected an ISO 8601 date such as 2030-01-31 or 2030-01-31T12:00:00Z.')
  }
  if (date.getTime() <= Date.now()) throw new InvalidArgumentError('Expected a date in the future.')
  return date
}

const program = new Command('cli')
  .description('Administer accounts, websites, website keys, account tokens and profiles.')
  .option('--json', 'print exactly one JSON object on stdout')
  .configureHelp({ showGlobalOptions: true })
  // Throw instead of exiting so that every way out goes through main(), which sets the exit code once.
  .exitOverride()
  .showHelpAfterError('(add --help for usage)')

/** Prints the result as JSON with --json, as the given lines otherwise. */
function print (result: object, ...lines: string[]): void {
  const { json = false } = program.opts<{ json?: boolean }>()
  process.stdout.write(json ? `${JSON.stringify(result)}\n` : `${lines.join('\n')}\n`)
}

/** Connects for one command and always closes the client, so that the process can exit. */
async function withRepositories (options: { write: boolean }, run: (repositories: Repositories) => Promise<void>): Promise<void> {
  const config = loadConfig()
  if (config.MONGO_URL === '') {
    throw new CliError('MONGO_URL is not set: point it at your MongoDB (npm run dev prints the URL of its local database)')
  }
  const { client, db } = await connectDatabase(config.MONGO_URL, config.MONGO_TIMEOUT_MS)
  try {
    const repositories = createRepositories(db)
    if (options.write) await ensureIndexes(repositories)
    await run(repositories)
  } finally {
    await client.close()
  }
}

async function requireAccount ({ websites }: Repositories, accountId: string): Promise<void> {
  if (!await websites.accountExists(accountId)) throw new CliError(`account ${accountId} does not exist`)
}

const accounts = program.command('accounts').description('manage accounts')

accounts.command('create')
  .description('create an account')
  .requiredOption('--name <name>', 'account name', parseText)
  .action(async (options: { name: string }) => {
    await withRepositories({ write: true }, async ({ websites }) => {
      const id = await websites.createAccount(options.name)
      print({ id }, `Created account ${id} (${options.name}).`)
    })
  })

const websites = program.command('websites').description('manage websites')

websites.command('create')
  .description('create a website of an account')
  .requiredOption('--account <id>', 'id of the owning account', parseId)
  .requiredOption('--domain <domain>', 'domain of the website', parseText)
  .option('--cookieless', 'cookieless tracking: identify calls succeed and store nothing', false)
  .action(async (options: { account: string, domain: string, cookieless: boolean }) => {
    await withRepositories({ write: true }, async (repositories) => {
      await requireAccount(repositories, options.account)
      const id = await repositories.websites.createWebsite({ accountId: options.account, domain: options.domain, cookieless: options.cookieless })
      print({ id }, `Created website ${id} (${options.domain}${options.cookieless ? ', cookieless' : ''}).`)
    })
  })

for (const [name, suspended] of [['suspend', true], ['resume', false]] as const) {
  websites.command(name)
    .description(suspended ? 'stop accepting identify calls for a website' : 'accept identify calls for a website again')
    .argument('<id>', 'website id', parseId)
    .action(async (id: string) => {
      await withRepositories({ write: true }, async ({ websites }) => {
        if (!await websites.setSuspended(id, suspended)) throw new CliError(`website ${id} does not exist`)
        print({ id, suspended }, `Website ${id} is ${suspended ? 'suspended' : 'active'}.`)
      })
    })
}

const keys = program.command('keys').description('manage website keys (df_…)')

keys.command('create')
  .description('create a key for one website')
  .requiredOption('--website <id>', 'website id', parseId)
  .option('--name <name>', 'a label to tell keys apart', parseText)
  .action(async (options: { website: string, name?: string }) => {
    await withRepositories({ write: true }, async ({ websites, credentials }) => {
      if (await websites.findWebsite(options.website) === null) throw new CliError(`website ${options.website} does not exist`)
      const { id, key } = await credentials.createWebsiteKey({ websiteId: options.website, name: options.name ?? '' })
      print({ id, key }, `Created website key ${id}:`, key, 'Store it now: it is shown only once.')
    })
  })

keys.command('revoke')
  .description('revoke a website key')
  .argument('<id>', 'key id', parseId)
  .action(async (id: string) => {
    await withRepositories({ write: true }, async ({ credentials }) => {
      if (!await credentials.revokeWebsiteKey(id)) throw new CliError(`website key ${id} does not exist`)
      print({ id, revoked: true }, `Website key ${id} is revoked.`)
    })
  })

const tokens = program.command('tokens').description('manage account tokens (dft_…)')

tokens.command('create')
  .description('create a token for an account')
  .requiredOption('--account <id>', 'account id', parseId)
  .requiredOption('--permissions <list>', 'comma-separated permissions, e.g. identify:write or *', parsePermissions)
  .option('--websites <ids>', 'comma-separated website ids of the account (default: all its websites)', parseIds)
  .option('--name <name>', 'a label to tell tokens apart', parseText)
  .option('--expires <date>', 'ISO 8601 expiry date in the future (default: never)', parseFutureDate)
  .action(async (options: { account: string, permissions: string[], websites?: string[], name?: string, expires?: Date }) => {
    await withRepositories({ write: true }, async (repositories) => {
      await requireAccount(repositories, options.account)
      for (const websiteId of options.websites ?? []) {
        const website = await repositories.websites.findWebsite(websiteId)
        if (website === null) throw new CliError(`website ${websiteId} does not exist`)
        if (website.accountId !== options.account) throw new CliError(`website ${websiteId} does not belong to account ${options.account}`)
      }
      const { id, token } = await repositories.credentials.createAccountToken({
        accountId: options.account,
        permissions: options.permissions,
        websiteIds: options.websites ?? [],
        name: options.name ?? '',
        expiresAt: options.expires ?? null
      })
      print({ id, token }, `Created account token ${id}:`, token, 'Store it now: it is shown only once.')
    })
  })

tokens.command('revoke')
  .description('revoke an account token')
  .argument('<id>', 'token id', parseId)
  .action(async (id: string) => {
    await withRepositories({ write: true }, async ({ credentials }) => {
      if (!await credentials.revokeAccountToken(id)) throw new CliError(`account token ${id} does not exist`)
      print({ id, revoked: true }, `Account token ${id} is revoked.`)
    })
  })

const profiles = program.command('profiles').description('read, list, export and erase profiles')

async function requireWebsite ({ websites }: Repositories, websiteId: string): Promise<void> {
  if (await websites.findWebsite(websiteId) === null) throw new CliError(`website ${websiteId} does not exist`)
}

profiles.command('get')
  .description('show the profile of one user of a website')
  .requiredOption('--website <id>', 'website id', parseId)
  .requiredOption('--user <userId>', 'the user_id sent to identify')
  .action(async (options: { website: string, user: string }) => {
    await withRepositories({ write: false }, async ({ profiles }) => {
      const profile = await profiles.findProfile(options.website, options.user)
      if (profile === null) throw new CliError(`website ${options.website} has no profile for user ${JSON.stringify(options.user)}`)
      print(profile,
        `Profile ${profile.id} of user ${JSON.stringify(profile.userId)} on website ${profile.websiteId}`,
        `created ${profile.createdAt.toISOString()}, updated ${profile.updatedAt.toISOString()}`,
        `visitors: ${profile.visitorIds.join(', ') || 'none'}`,
        `metadata: ${JSON.stringify(profile.metadata, null, 2)}`)
    })
  })

profiles.command('list')
  .description(`list the first profiles of a website in id order (all of them: profiles export)`)
  .requiredOption('--website <id>', 'website id', parseId)
  .option('--limit <n>', `how many, 1 to ${PAGE_LIMIT_MAX}`, parseLimit, PAGE_LIMIT_DEFAULT)
  .action(async (options: { website: string, limit: number }) => {
    await withRepositories({ write: false }, async (repositories) => {
      await requireWebsite(repositories, options.website)
      const page = await repositories.profiles.listProfiles(options.website, { after: null, limit: options.limit })
      const more = page.nextAfter !== null
      print({ profiles: page.profiles, more },
        ...page.profiles.map((profile) => `${profile.id}  ${JSON.stringify(profile.userId)}  ${profile.visitorIds.length} visitor(s)  updated ${profile.updatedAt.toISOString()}`),
        `${page.profiles.length} profile(s)${more ? '; there are more: raise --limit or use profiles export' : ''}.`)
    })
  })

profiles.command('delete')
  .description('erase the profile of one user of a website and every visitor link to it')
  .requiredOption('--website <id>', 'website id', parseId)
  .requiredOption('--user <userId>', 'the user_id sent to identify')
  .action(async (options: { website: string, user: string }) => {
    await withRepositories({ write: true }, async (repositories) => {
      await requireWebsite(repositories, options.website)
      const profileId = profileIdFor(options.website, options.user).toHexString()
      const erasure = await repositories.profiles.eraseProfile(options.website, profileId)
      if (erasure === null) throw new CliError(`website ${options.website} has no profile for user ${JSON.stringify(options.user)}`)
      print({ profileId, erased: true, visitorLinks: erasure.visitorLinks },
        `Erased profile ${profileId} of website ${options.website} and its ${erasure.visitorLinks} visitor link(s).`)
    })
  })

profiles.command('export')
  .description('write every profile of a website to stdout as NDJSON, one profile a line (progress on stderr when it is a terminal)')
  .requiredOption('--website <id>', 'website id', parseId)
  .action(async (options: { website: string }) => {
    await withRepositories({ write: false }, async (repositories) => {
      await requireWebsite(repositories, options.website)
      const output = stdoutWriter()
      const progress = exportProgress()
      try {
        for await (const profile of repositories.profiles.exportProfiles(options.website)) {
          await output.write(`${JSON.stringify(profile)}\n`)
          progress.count()
        }
      } finally {
        progress.done()
      }
    })
  })

/** Writes to stdout, waiting while it is full, so that memory stays constant however slow the reader; fails once the reader is gone. */
function stdoutWriter (): { write: (text: string) => Promise<void> } {
  let failed: Error | null = null
  process.stdout.on('error', (error: Error) => { failed = error })
  return {
    write: async (text) => {
      if (failed !== null) throw new CliError(`stdout closed before the export ended (${failed.message})`)
      if (!process.stdout.write(text)) await once(process.stdout, 'drain')
    }
  }
}

/** A line on stderr, rewritten once a second, when stderr is a terminal; nothing otherwise. */
function exportProgress (): { count: () => void, done: () => void } {
  let exported = 0
  const started = Date.now()
  const show = (): void => { process.stderr.write(`\rexported ${exported.toLocaleString('en-US')} profiles (${Math.round(exported / Math.max(1, (Date.now() - started) / 1000)).toLocaleString('en-US')}/s)`) }
  const timer = process.stderr.isTTY ? setInterval(show, 1000) : undefined
  return {
    count: () => { exported++ },
    done: () => {
      if (timer === undefined) return
      clearInterval(timer)
      show()
      process.stderr.write('\n')
    }
  }
}

async function main (): Promise<void> {
  try {
    await program.parseAsync()
  } catch (error) {
    // Commander has already printed its own errors, and help or version output exits with 0.
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode
      return
    }
    const detail = error instanceof Error ? error.message : String(error)
    if (error instanceof CliError) process.stderr.write(`error: ${detail}\n`)
    else if (error instanceof ConfigError) process.stderr.write(`error: configuration: ${detail}\n`)
    else if (isDatabaseUnavailable(error)) process.stderr.write(`error: cannot reach the database: ${detail}\n`)
    // Anything else is a bug: the stack trace is what its report needs.
    else process.stderr.write(`error: ${error instanceof Error ? String(error.stack) : detail}\n`)
    process.exitCode = 1
  }
}

await main()
