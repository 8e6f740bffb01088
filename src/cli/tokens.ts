import type { Command } from 'commander'
import { operatorActor } from '../domain/account-admin.js'
import type { CliContext } from './context.js'
import { parseExpiresAt, parseId, parseName, parsePermissions, parseWebsiteIds } from './options.js'

interface CreateOptions { account: string, permissions: string[], websites?: string[], name?: string, expires?: Date }

export function addTokenCommands (program: Command, cli: CliContext): void {
  const tokens = program.command('tokens').description('manage account tokens (dft_…)')

  tokens.command('create')
    .description('create a token for an account')
    .requiredOption('--account <id>', 'account id', parseId)
    .requiredOption('--permissions <list>', 'comma-separated permissions, e.g. identify:write or *', parsePermissions)
    .option('--websites <ids>', 'comma-separated website ids of the account (default: all its websites)', parseWebsiteIds)
    .option('--name <name>', 'a label to tell tokens apart', parseName)
    .option('--expires <date>', 'ISO 8601 expiry date in the future (default: never)', parseExpiresAt)
    .action(async (options: CreateOptions) => {
      await cli.withAdmin({ write: true }, async (admin) => {
        const { accessToken: { id }, token } = await admin.createAccessToken(operatorActor(options.account), {
          permissions: options.permissions,
          websiteIds: options.websites ?? [],
          name: options.name ?? '',
          expiresAt: options.expires ?? null
        })
        cli.print({ id, token }, `Created account token ${id}:`, token, 'Store it now: it is shown only once.')
      })
    })

  tokens.command('list')
    .description('list the tokens of an account, revoked and expired ones included; never a secret')
    .requiredOption('--account <id>', 'account id', parseId)
    .action(async (options: { account: string }) => {
      await cli.withAdmin({ write: false }, async (admin) => {
        const list = await admin.listAccessTokens(operatorActor(options.account))
        cli.print({ accessTokens: list }, ...list.map((token) => [
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
      await cli.withAdmin({ write: true }, async (admin) => {
        await admin.revokeAccessToken(operatorActor(), id)
        await cli.announce({ kind: 'accountToken', id })
        cli.print({ id, revoked: true }, `Account token ${id} is revoked.`)
      })
    })
}
