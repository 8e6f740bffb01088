import type { Command } from 'commander'
import { operatorActor } from '../domain/account-admin.js'
import type { CliContext } from './context.js'
import { parseDomain, parseId } from './options.js'

export function addWebsiteCommands (program: Command, cli: CliContext): void {
  const websites = program.command('websites').description('manage websites')

  websites.command('create')
    .description('create a website of an account')
    .requiredOption('--account <id>', 'id of the owning account', parseId)
    .requiredOption('--domain <domain>', 'host name of the website, such as example.com', parseDomain)
    .option('--cookieless', 'cookieless tracking: identify calls succeed and store nothing', false)
    .action(async (options: { account: string, domain: string, cookieless: boolean }) => {
      await cli.withAdmin({ write: true }, async (admin) => {
        const { id, domain } = await admin.createWebsite(operatorActor(options.account), { domain: options.domain, cookieless: options.cookieless })
        cli.print({ id }, `Created website ${id} (${domain}${options.cookieless ? ', cookieless' : ''}).`)
      })
    })

  websites.command('list')
    .description('list the websites of an account')
    .requiredOption('--account <id>', 'account id', parseId)
    .action(async (options: { account: string }) => {
      await cli.withAdmin({ write: false }, async (admin) => {
        const list = await admin.listWebsites(operatorActor(options.account))
        cli.print({ websites: list }, ...list.map((website) =>
          `${website.id}  ${website.domain}${website.cookieless ? '  cookieless' : ''}${website.suspended ? '  suspended' : ''}`))
      })
    })

  for (const suspended of [true, false]) addSuspension(websites, cli, suspended)
}

function addSuspension (websites: Command, cli: CliContext, suspended: boolean): void {
  websites.command(suspended ? 'suspend' : 'resume')
    .description(suspended ? 'stop accepting identify calls for a website' : 'accept identify calls for a website again')
    .argument('<id>', 'website id', parseId)
    .action(async (id: string) => {
      await cli.withAdmin({ write: true }, async (admin) => {
        await admin.updateWebsite(operatorActor(), id, { suspended })
        await cli.announce({ kind: 'website', id })
        cli.print({ id, suspended }, `Website ${id} is ${suspended ? 'suspended' : 'active'}.`)
      })
    })
}
