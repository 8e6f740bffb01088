import type { Command } from 'commander'
import type { CliContext } from './context.js'
import { parseText } from './options.js'

export function addAccountCommands (program: Command, cli: CliContext): void {
  const accounts = program.command('accounts').description('manage accounts')

  accounts.command('create')
    .description('create an account')
    .requiredOption('--name <name>', 'account name', parseText)
    .action(async (options: { name: string }) => {
      await cli.withRepositories({ write: true }, async ({ websites }) => {
        const id = await websites.createAccount(options.name)
        cli.print({ id }, `Created account ${id} (${options.name}).`)
      })
    })
}
