import type { Command } from 'commander'
import { operatorActor } from '../domain/account-admin.js'
import type { CliContext } from './context.js'
import { parseId, parseName } from './options.js'

export function addKeyCommands (program: Command, cli: CliContext): void {
  const keys = program.command('keys').description('manage website keys (df_…)')

  keys.command('create')
    .description('create a key for one website')
    .requiredOption('--website <id>', 'website id', parseId)
    .option('--name <name>', 'a label to tell keys apart', parseName)
    .action(async (options: { website: string, name?: string }) => {
      await cli.withAdmin({ write: true }, async (admin) => {
        const { apiKey: { id }, key } = await admin.createApiKey(operatorActor(), options.website, { name: options.name ?? '' })
        cli.print({ id, key }, `Created website key ${id}:`, key, 'Store it now: it is shown only once.')
      })
    })

  keys.command('list')
    .description('list the keys of a website, revoked ones included; never a secret')
    .requiredOption('--website <id>', 'website id', parseId)
    .action(async (options: { website: string }) => {
      await cli.withAdmin({ write: false }, async (admin) => {
        const list = await admin.listApiKeys(operatorActor(), options.website)
        cli.print({ apiKeys: list }, ...list.map((key) =>
          `${key.id}  ${key.displayPrefix}…  ${key.revokedAt === null ? 'active' : `revoked ${key.revokedAt}`}  ${key.name}`.trimEnd()))
      })
    })

  keys.command('revoke')
    .description('revoke a website key')
    .argument('<id>', 'key id', parseId)
    .action(async (id: string) => {
      await cli.withAdmin({ write: true }, async (admin) => {
        await admin.revokeApiKey(operatorActor(), id)
        await cli.announce({ kind: 'websiteKey', id })
        cli.print({ id, revoked: true }, `Website key ${id} is revoked.`)
      })
    })
}
