import { once } from 'node:events'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import type { Command } from 'commander'
import { identifyRules } from '../config.js'
import { checkBatchItems, storeCheckedBatch } from '../domain/identify-batch.js'
import { PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX } from '../domain/profiles.js'
import type { Repositories } from '../storage/repositories/index.js'
import { profileIdFor } from '../storage/repositories/profiles.js'
import type { Website } from '../domain/accounts.js'
import { CliError, CliExit, type CliContext } from './context.js'
import { importProgress } from './import-progress.js'
import { exportProfiles } from './profiles-export.js'
import { importNdjson, type ImportReport } from './profiles-import.js'
import { parseId, parseLimit, parseLineCount } from './options.js'

export function addProfileCommands (program: Command, cli: CliContext): void {
  const profiles = program.command('profiles').description('read, list, export and erase profiles')
  addGet(profiles, cli)
  addList(profiles, cli)
  addDelete(profiles, cli)
  addExport(profiles, cli)
  addImport(profiles, cli)
}

async function requireWebsite ({ websites }: Repositories, websiteId: string): Promise<Website> {
  const website = await websites.findWebsite(websiteId)
  if (website === null) throw new CliError(`website ${websiteId} does not exist`)
  return website
}

const noProfile = (websiteId: string, userId: string): CliError =>
  new CliError(`website ${websiteId} has no profile for user ${JSON.stringify(userId)}`)

function addGet (profiles: Command, cli: CliContext): void {
  profiles.command('get')
    .description('show the profile of one user of a website')
    .requiredOption('--website <id>', 'website id', parseId)
    .requiredOption('--user <userId>', 'the user_id sent to identify')
    .action(async (options: { website: string, user: string }) => {
      await cli.withRepositories({ write: false }, async ({ profiles }) => {
        const profile = await profiles.findProfile(options.website, options.user)
        if (profile === null) throw noProfile(options.website, options.user)
        cli.print(profile,
          `Profile ${profile.id} of user ${JSON.stringify(profile.userId)} on website ${profile.websiteId}`,
          `created ${profile.createdAt.toISOString()}, updated ${profile.updatedAt.toISOString()}`,
          `visitors: ${profile.visitorIds.join(', ') || 'none'}`,
          `metadata: ${JSON.stringify(profile.metadata, null, 2)}`)
      })
    })
}

function addList (profiles: Command, cli: CliContext): void {
  profiles.command('list')
    .description(`list the first profiles of a website in id order (all of them: profiles export)`)
    .requiredOption('--website <id>', 'website id', parseId)
    .option('--limit <n>', `how many, 1 to ${PAGE_LIMIT_MAX}`, parseLimit, PAGE_LIMIT_DEFAULT)
    .action(async (options: { website: string, limit: number }) => {
      await cli.withRepositories({ write: false }, async (repositories) => {
        await requireWebsite(repositories, options.website)
        const page = await repositories.profiles.listProfiles(options.website, { after: null, limit: options.limit })
        const more = page.nextAfter !== null
        cli.print({ profiles: page.profiles, more },
          ...page.profiles.map((profile) => `${profile.id}  ${JSON.stringify(profile.userId)}  ${profile.visitorIds.length} visitor(s)  updated ${profile.updatedAt.toISOString()}`),
          `${page.profiles.length} profile(s)${more ? '; there are more: raise --limit or use profiles export' : ''}.`)
      })
    })
}

function addDelete (profiles: Command, cli: CliContext): void {
  profiles.command('delete')
    .description('erase the profile of one user of a website and every visitor link to it')
    .requiredOption('--website <id>', 'website id', parseId)
    .requiredOption('--user <userId>', 'the user_id sent to identify')
    .action(async (options: { website: string, user: string }) => {
      await cli.withRepositories({ write: true }, async (repositories) => {
        await requireWebsite(repositories, options.website)
        const profileId = profileIdFor(options.website, options.user).toHexString()
        const erasure = await repositories.profiles.eraseProfile(options.website, profileId)
        if (erasure === null) throw noProfile(options.website, options.user)
        cli.print({ profileId, erased: true, visitorLinks: erasure.visitorLinks },
          `Erased profile ${profileId} of website ${options.website} and its ${erasure.visitorLinks} visitor link(s).`)
      })
    })
}

function addExport (profiles: Command, cli: CliContext): void {
  profiles.command('export')
    .description('write every profile of a website to stdout as NDJSON, one profile a line (progress on stderr when it is a terminal)')
    .requiredOption('--website <id>', 'website id', parseId)
    .action(async (options: { website: string }) => {
      await cli.withRepositories({ write: false }, async (repositories) => {
        await requireWebsite(repositories, options.website)
        await exportProfiles(cli.io, repositories.profiles, options.website)
      })
    })
}

interface ImportOptions { website: string, progressEvery: number }

function addImport (profiles: Command, cli: CliContext): void {
  profiles.command('import')
    .description('store the identify bodies of an NDJSON file (one a line, - for stdin) in order, as batch identify does; exits 1 if a line was refused')
    .requiredOption('--website <id>', 'website id', parseId)
    .option('--progress-every <lines>', 'when stderr is no terminal, a progress line every this many lines (and every 5 s)', parseLineCount, 100_000)
    .argument('<file>', 'NDJSON file of identify bodies, or - for standard input')
    .action(async (file: string, options: ImportOptions) => {
      const { input, measure } = file === '-' ? { input: cli.io.stdin, measure: null } : await openInput(file)
      try {
        await cli.withRepositories({ write: true }, async (repositories) => {
          const website = await requireWebsite(repositories, options.website)
          reportImport(cli, await runImport(cli, repositories, website, { input, measure, everyLines: options.progressEvery }))
        })
      } finally {
        if (measure !== null) input.destroy()
      }
    })
}

type Measure = { size: number, bytesRead: () => number } | null

async function runImport (cli: CliContext, repositories: Repositories, website: Website,
  { input, measure, everyLines }: { input: Readable, measure: Measure, everyLines: number }): Promise<ImportReport> {
  const config = cli.config()
  const rules = identifyRules(config)
  const progress = importProgress({ file: measure, everyLines, stderr: cli.io.stderr })
  try {
    return await importNdjson(input, {
      chunkSize: config.BATCH_MAX_ITEMS,
      check: (items) => checkBatchItems(items, rules),
      store: async (checked) => await storeCheckedBatch(repositories.profiles, { websiteId: website.id, cookieless: website.cookieless }, checked, rules.limits),
      onProgress: progress.update
    })
  } finally {
    progress.stop()
  }
}

function reportImport ({ io, print }: CliContext, { counts, refused }: ImportReport): void {
  for (const { line, message } of refused) io.stderr.write(`line ${line}: ${message}\n`)
  if (counts.failed > 0) {
    const unlisted = counts.failed - refused.length
    io.stderr.write(`${counts.failed} line(s) refused${unlisted > 0 ? ` (${unlisted} not listed)` : ''}\n`)
  }
  print({ counts }, `created ${counts.created}, updated ${counts.updated}, unchanged ${counts.unchanged}, skipped ${counts.skipped}, failed ${counts.failed}`)
  if (counts.failed > 0) throw new CliExit(1)
}

/** The file to import and how far it has been read, opened before anything else so that a wrong path fails at once. */
async function openInput (path: string): Promise<{ input: Readable, measure: Measure }> {
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
