import { once } from 'node:events'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { Command, CommanderError, InvalidArgumentError } from 'commander'
import { ConfigError, identifyRules, loadConfig } from './config.js'
import { importProgress } from './cli/import-progress.js'
import { importNdjson } from './cli/profiles-import.js'
import { connectDatabase } from './storage/database.js'
import { publishCredentialChange } from './fleet/credential-changes.js'
import type { CredentialChange } from './domain/credential-resolver.js'
import { isDatabaseUnavailable } from './storage/mongo-errors.js'
import { AccountAdmin, operatorActor } from './domain/account-admin.js'
import { checkDomain, checkExpiresAt, checkName, checkWebsiteIds } from './domain/account-rules.js'
import { checkPermissions } from './domain/credentials.js'
import { DomainError } from './domain/errors.js'
import { canonicalObjectId } from './domain/ids.js'
import { checkBatchItems, storeCheckedBatch } from './domain/identify-batch.js'
import { checkPageLimit, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX } from './domain/profiles.js'
import { createRepositories, ensureIndexes, type Repositories } from './storage/repositories/index.js'
import { profileIdFor } from './storage/repositories/profiles.js'
import type { Website } from './storage/repositories/websites.js'

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

/** One of the Account API's rules as an option parser: the command line refuses what the API refuses, with the API's message. */
const byRule = <T>(check: (value: string) => T) => (value: string): T => {
  try {
    return check(value)
  } catch (error) {
    if (error instanceof DomainError) throw new InvalidArgumentError(`${error.message}.`)
    throw error
  }
}

const parsePermissions = byRule((value) => checkPermissions(parseList(value)))
const parseWebsiteIds = byRule((value) => checkWebsiteIds(parseList(value)))
const parseDomain = byRule(checkDomain)
const parseName = byRule(checkName)
const parseExpiresAt = byRule((value) => checkExpiresAt(value))

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

/** The Account API's operations for the operator, who is bound by nothing but the account named. */
async function withAdmin (options: { write: boolean }, run: (admin: AccountAdmin) => Promise<void>): Promise<void> {
  await withRepositories(options, async (repositories) => {
    await run(new AccountAdmin(repositories, loadConfig().MAX_TOKENS_PER_ACCOUNT))
  })
}

/** With REDIS_URL, every replica drops its cached copy at once; without Redis they see the change within AUTH_CACHE_TTL_MS. */
async function announce (change: CredentialChange): Promise<void> {
  if (await publishCredentialChange(loadConfig().REDIS_URL, change) === 'unreachable') {
    process.stderr.write('Warning: Redis is unreachable; running replicas see this change within AUTH_CACHE_TTL_MS.\n')
  }
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
  .requiredOption('--domain <domain>', 'host name of the website, such as example.com', parseDomain)
  .option('--cookieless', 'cookieless tracking: identify calls succeed and store nothing', false)
  .action(async (options: { account: string, domain: string, cookieless: boolean }) => {
    await withAdmin({ write: true }, async (admin) => {
      const { id, domain } = await admin.createWebsite(operatorActor(options.account), { domain: options.domain, cookieless: options.cookieless })
      print({ id }, `Created website ${id} (${domain}${options.cookieless ? ', cookieless' : ''}).`)
    })
  })

websites.command('list')
  .description('list the websites of an account')
  .requiredOption('--account <id>', 'account id', parseId)
  .action(async (options: { account: string }) => {
    await withAdmin({ write: false }, async (admin) => {
      const list = await admin.listWebsites(operatorActor(options.account))
      print({ websites: list }, ...list.map((website) =>
        `${website.id}  ${website.domain}${website.cookieless ? '  cookieless' : ''}${website.suspended ? '  suspended' : ''}`))
    })
  })

for (const [name, suspended] of [['suspend', true], ['resume', false]] as const) {
  websites.command(name)
    .description(suspended ? 'stop accepting identify calls for a website' : 'accept identify calls for a website again')
    .argument('<id>', 'website id', parseId)
    .action(async (id: string) => {
      await withAdmin({ write: true }, async (admin) => {
        await admin.updateWebsite(operatorActor(), id, { suspended })
        await announce({ kind: 'website', id })
        print({ id, suspended }, `Website ${id} is ${suspended ? 'suspended' : 'active'}.`)
      })
    })
}

const keys = program.command('keys').description('manage website keys (df_…)')

keys.command('create')
  .description('create a key for one website')
  .requiredOption('--website <id>', 'website id', parseId)
  .option('--name <name>', 'a label to tell keys apart', parseName)
  .action(async (options: { website: string, name?: string }) => {
    await withAdmin({ write: true }, async (admin) => {
      const { apiKey: { id }, key } = await admin.createApiKey(operatorActor(), options.website, { name: options.name ?? '' })
      print({ id, key }, `Created website key ${id}:`, key, 'Store it now: it is shown only once.')
    })
  })

keys.command('list')
  .description('list the keys of a website, revoked ones included; never a secret')
  .requiredOption('--website <id>', 'website id', parseId)
  .action(async (options: { website: string }) => {
    await withAdmin({ write: false }, async (admin) => {
      const list = await admin.listApiKeys(operatorActor(), options.website)
      print({ apiKeys: list }, ...list.map((key) =>
        `${key.id}  ${key.displayPrefix}…  ${key.revokedAt === null ? 'active' : `revoked ${key.revokedAt}`}  ${key.name}`.trimEnd()))
    })
  })

keys.command('revoke')
  .description('revoke a website key')
  .argument('<id>', 'key id', parseId)
  .action(async (id: string) => {
    await withAdmin({ write: true }, async (admin) => {
      await admin.revokeApiKey(operatorActor(), id)
      await announce({ kind: 'websiteKey', id })
      print({ id, revoked: true }, `Website key ${id} is revoked.`)
    })
  })

const tokens = program.command('tokens').description('manage account tokens (dft_…)')

tokens.command('create')
  .description('create a token for an account')
  .requiredOption('--account <id>', 'account id', parseId)
  .requiredOption('--permissions <list>', 'comma-separated permissions, e.g. identify:write or *', parsePermissions)
  .option('--websites <ids>', 'comma-separated website ids of the account (default: all its websites)', parseWebsiteIds)
  .option('--name <name>', 'a label to tell tokens apart', parseName)
  .option('--expires <date>', 'ISO 8601 expiry date in the future (default: never)', parseExpiresAt)
  .action(async (options: { account: string, permissions: string[], websites?: string[], name?: string, expires?: Date }) => {
    await withAdmin({ write: true }, async (admin) => {
      const { accessToken: { id }, token } = await admin.createAccessToken(operatorActor(options.account), {
        permissions: options.permissions,
        websiteIds: options.websites ?? [],
        name: options.name ?? '',
        expiresAt: options.expires ?? null
      })
      print({ id, token }, `Created account token ${id}:`, token, 'Store it now: it is shown only once.')
    })
  })

tokens.command('list')
  .description('list the tokens of an account, revoked and expired ones included; never a secret')
  .requiredOption('--account <id>', 'account id', parseId)
  .action(async (options: { account: string }) => {
    await withAdmin({ write: false }, async (admin) => {
      const list = await admin.listAccessTokens(operatorActor(options.account))
      print({ accessTokens: list }, ...list.map((token) => [
        `${token.id}  ${token.displayPrefix}…  ${token.permissions.join(',')}`,
        `websites: ${token.websiteIds.length === 0 ? 'all' : token.websiteIds.join(',')}`,
        token.revokedAt === null ? `expires: ${token.expiresAt ?? 'never'}` : `revoked ${token.revokedAt}`,
        token.name
      ].join('  ').trimEnd()))
    })
  })

tokens.command('revoke')
  .description('revoke an account token')
  .argument('<id>', 'token id', parseId)
  .action(async (id: string) => {
    await withAdmin({ write: true }, async (admin) => {
      await admin.revokeAccessToken(operatorActor(), id)
      await announce({ kind: 'accountToken', id })
      print({ id, revoked: true }, `Account token ${id} is revoked.`)
    })
  })

const profiles = program.command('profiles').description('read, list, export and erase profiles')

async function requireWebsite ({ websites }: Repositories, websiteId: string): Promise<Website> {
  const website = await websites.findWebsite(websiteId)
  if (website === null) throw new CliError(`website ${websiteId} does not exist`)
  return website
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
      // Lines go out in chunks: on Linux a write to a pipe is synchronous, one system call each.
      let chunk = ''
      try {
        for await (const profile of repositories.profiles.exportProfiles(options.website)) {
          chunk += `${JSON.stringify(profile)}\n`
          progress.count()
          if (chunk.length < EXPORT_CHUNK_CHARACTERS) continue
          await output.write(chunk)
          chunk = ''
        }
        if (chunk !== '') await output.write(chunk)
      } finally {
        progress.done()
      }
    })
  })

const parseLineCount = (value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('Expected a whole number of at least 1.')
  return Number(value)
}

profiles.command('import')
  .description('store the identify bodies of an NDJSON file (one a line, - for stdin) in order, as batch identify does; exits 1 if a line was refused')
  .requiredOption('--website <id>', 'website id', parseId)
  .option('--progress-every <lines>', 'when stderr is no terminal, a progress line every this many lines (and every 5 s)', parseLineCount, 100_000)
  .argument('<file>', 'NDJSON file of identify bodies, or - for standard input')
  .action(async (file: string, options: { website: string, progressEvery: number }) => {
    const { input, measure } = file === '-' ? { input: process.stdin, measure: null } : await openInput(file)
    await withRepositories({ write: true }, async (repositories) => {
      const website = await requireWebsite(repositories, options.website)
      const config = loadConfig()
      const rules = identifyRules(config)
      const progress = importProgress({
        file: measure,
        everyLines: options.progressEvery,
        stderr: process.stderr
      })
      let report
      try {
        report = await importNdjson(input, {
          chunkSize: config.BATCH_MAX_ITEMS,
          check: (items) => checkBatchItems(items, rules),
          store: async (checked) => await storeCheckedBatch(repositories.profiles, { websiteId: website.id, cookieless: website.cookieless }, checked, rules.limits),
          onProgress: progress.update
        })
      } finally {
        progress.stop()
      }
      const { counts, refused } = report
      for (const { line, message } of refused) process.stderr.write(`line ${line}: ${message}\n`)
      if (counts.failed > 0) {
        const unlisted = counts.failed - refused.length
        process.stderr.write(`${counts.failed} line(s) refused${unlisted > 0 ? ` (${unlisted} not listed)` : ''}\n`)
        process.exitCode = 1
      }
      print({ counts }, `created ${counts.created}, updated ${counts.updated}, unchanged ${counts.unchanged}, skipped ${counts.skipped}, failed ${counts.failed}`)
    })
  })

/** The file to import and how far it has been read, opened before anything else so that a wrong path fails at once. */
async function openInput (path: string): Promise<{ input: Readable, measure: { size: number, bytesRead: () => number } }> {
  const input = createReadStream(path)
  try {
    await once(input, 'open')
    const { size } = await stat(path)
    return { input, measure: { size, bytesRead: () => input.bytesRead } }
  } catch (error) {
    input.destroy()
    throw new CliError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`)
  }
}

/** Writes to stdout, waiting while it is full, so that memory stays constant however slow the reader; fails once the reader is gone. */
/** About what one write of an export sends: large enough to amortise the call, small enough to stay out of the heap's way. */
const EXPORT_CHUNK_CHARACTERS = 256 * 1024

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
    if (error instanceof CliError || error instanceof DomainError) process.stderr.write(`error: ${detail}\n`)
    else if (error instanceof ConfigError) process.stderr.write(`error: configuration: ${detail}\n`)
    else if (isDatabaseUnavailable(error)) process.stderr.write(`error: cannot reach the database: ${detail}\n`)
    // Anything else is a bug: the stack trace is what its report needs.
    else process.stderr.write(`error: ${error instanceof Error ? String(error.stack) : detail}\n`)
    process.exitCode = 1
  }
}

await main()
