import { describe, expect, it } from 'vitest'
import { appWithCli } from './cli-helper.js'
import { createTestToken, createTestWebsite, expectError } from './helper.js'
import { adminCall, createOwner, dataOf } from './admin-helper.js'

/*
 * The command line and the Account API apply one set of rules
 * (src/domain/account-rules.ts): the same bad input gets the same message
 * from both, and the CLI's listings print the API's data.
 */

const { app, cli } = await appWithCli()

/** The CLI fails, and its message holds the API's message word for word. */
async function failsWith (args: string[], message: string): Promise<void> {
  const run = await cli(args)
  expect(run.code, run.stderr).toBe(1)
  expect(run.stdout).toBe('')
  expect(run.stderr).toContain(message)
}

const unknownId = 'ffffffffffffffffffffffff'

describe('the CLI and the API refuse the same bad input with the same message', { timeout: 240_000 }, () => {
  it('tokens: unknown permission, malformed and past expiry, malformed and foreign websites, a bad name', async () => {
    const site = await createOwner(app)
    const stranger = await createTestWebsite(app)
    const cases: Array<{ api: Record<string, unknown>, cli: string[], status: number }> = [
      { api: { permissions: ['identify:wrte'] }, cli: ['--permissions', 'identify:wrte'], status: 400 },
      { api: { permissions: ['*'], expiresAt: 'next week' }, cli: ['--permissions', '*', '--expires', 'next week'], status: 400 },
      { api: { permissions: ['*'], expiresAt: '2030-02-30' }, cli: ['--permissions', '*', '--expires', '2030-02-30'], status: 400 },
      { api: { permissions: ['*'], expiresAt: '2001-01-01' }, cli: ['--permissions', '*', '--expires', '2001-01-01'], status: 400 },
      { api: { permissions: ['*'], websiteIds: ['abc'] }, cli: ['--permissions', '*', '--websites', 'abc'], status: 400 },
      { api: { permissions: ['*'], name: ' ' }, cli: ['--permissions', '*', '--name', ' '], status: 400 },
      { api: { permissions: ['*'], websiteIds: [stranger.websiteId] }, cli: ['--permissions', '*', '--websites', stranger.websiteId], status: 404 },
      { api: { permissions: ['*'], websiteIds: [unknownId] }, cli: ['--permissions', '*', '--websites', unknownId], status: 404 }
    ]
    for (const { api, cli: options, status } of cases) {
      const message = expectError(await adminCall(app, 'POST', '/access-tokens', site.owner, api), status)
      await failsWith(['tokens', 'create', '--account', site.accountId, ...options], message)
    }
    expect(await app.repositories.credentials.listAccountTokens(site.accountId)).toHaveLength(1)
  })

  it('websites and keys: a bad domain, a bad name, unknown ids', async () => {
    const site = await createOwner(app)
    const domain = expectError(await adminCall(app, 'POST', '/websites', site.owner, { domain: 'https://shop.example' }), 400)
    await failsWith(['websites', 'create', '--account', site.accountId, '--domain', 'https://shop.example'], domain)
    const name = expectError(await adminCall(app, 'POST', `/websites/${site.websiteId}/api-keys`, site.owner, { name: 'a'.repeat(101) }), 400)
    await failsWith(['keys', 'create', '--website', site.websiteId, '--name', 'a'.repeat(101)], name)
    const website = expectError(await adminCall(app, 'POST', `/websites/${unknownId}/api-keys`, site.owner, {}), 404)
    await failsWith(['keys', 'create', '--website', unknownId], website)
    const key = expectError(await adminCall(app, 'DELETE', `/api-keys/${unknownId}`, site.owner), 404)
    await failsWith(['keys', 'revoke', unknownId], key)
    const token = expectError(await adminCall(app, 'DELETE', `/access-tokens/${unknownId}`, site.owner), 404)
    await failsWith(['tokens', 'revoke', unknownId], token)
    const suspend = expectError(await adminCall(app, 'PATCH', `/websites/${unknownId}`, site.owner, { suspended: true }), 404)
    await failsWith(['websites', 'suspend', unknownId], suspend)
  })

  it('the 21st active token of an account, from either side', async () => {
    const site = await createOwner(app)
    for (let index = 1; index < 20; index++) await createTestToken(app, { accountId: site.accountId })
    const message = expectError(await adminCall(app, 'POST', '/access-tokens', site.owner, { permissions: ['identify:write'] }), 409)
    await failsWith(['tokens', 'create', '--account', site.accountId, '--permissions', '*'], message)
    expect(await app.repositories.credentials.listAccountTokens(site.accountId)).toHaveLength(20)
  })
})

describe('the CLI lists what the API lists, in the same shapes', { timeout: 240_000 }, () => {
  it('websites list, keys list and tokens list print the API\'s data with --json', async () => {
    const site = await createOwner(app)
    await createTestWebsite(app, { accountId: site.accountId, cookieless: true })
    dataOf(await adminCall(app, 'DELETE', `/api-keys/${site.keyId}`, site.owner))
    dataOf(await adminCall(app, 'POST', '/access-tokens', site.owner, { name: 'ci', permissions: ['identify:write'], expiresAt: '2099-01-01' }), 201)
    const pairs: Array<[string, string[]]> = [
      ['/websites', ['websites', 'list', '--account', site.accountId]],
      [`/websites/${site.websiteId}/api-keys`, ['keys', 'list', '--website', site.websiteId]],
      ['/access-tokens', ['tokens', 'list', '--account', site.accountId]]
    ]
    for (const [path, args] of pairs) {
      const run = await cli([...args, '--json'])
      expect(run, args.join(' ')).toMatchObject({ code: 0, stderr: '' })
      expect(JSON.parse(run.stdout)).toEqual(dataOf(await adminCall(app, 'GET', path, site.owner)))
    }
    const text = await cli(['tokens', 'list', '--account', site.accountId])
    expect(text.stdout).toMatch(/^[0-9a-f]{24} {2}dft_.{6}… {2}\* {2}websites: all {2}expires: never {2}test$/m)
    expect(text.stdout).toMatch(/identify:write {2}websites: all {2}expires: 2099-01-01T00:00:00\.000Z {2}ci$/m)
    expect(text.stdout).not.toContain(site.owner)
  })
})
