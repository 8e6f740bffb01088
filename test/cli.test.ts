import { describe, expect, it } from 'vitest'
import { hashSecret } from '../src/domain/credentials.js'
import { appWithCli } from './cli-helper.js'
import { createTestWebsite, identify, visitorId } from './helper.js'

// The CLI and this app share one database, so the app can check what the CLI wrote.
const { app, cli, spawnCli } = await appWithCli()

/** Runs a command with --json and returns the one object it printed. */
async function json (args: string[]): Promise<Record<string, unknown>> {
  const run = await cli([...args, '--json'])
  expect(run).toMatchObject({ code: 0, stderr: '' })
  expect(run.stdout.trimEnd().split('\n')).toHaveLength(1)
  return JSON.parse(run.stdout) as Record<string, unknown>
}

/** Expects a failure: non-zero exit, a message on stderr, nothing on stdout. */
async function fails (args: string[], message: RegExp, env: Record<string, string> = {}): Promise<void> {
  const run = await cli(args, env)
  expect(run.stderr).toMatch(message)
  expect(run.code).not.toBe(0)
  expect(run.code).not.toBeNull()
  expect(run.stdout).toBe('')
}

const hexId = /^[0-9a-f]{24}$/
const unknownId = 'ffffffffffffffffffffffff'
const body = (userId = 'u1') => ({ user_id: userId, datafast_visitor_id: visitorId() })

// Concurrent so that one test's commands overlap another's database calls.
describe.concurrent('cli', { timeout: 180_000 }, () => {
  it('creates an account', async () => {
    const result = await json(['accounts', 'create', '--name', 'Acme'])
    expect(Object.keys(result)).toEqual(['id'])
    expect(result.id).toMatch(hexId)
    expect(await app.repositories.websites.accountExists(result.id as string)).toBe(true)
  })

  it('prints readable text without --json', async () => {
    const run = await cli(['accounts', 'create', '--name', 'Acme'])
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/^Created account [0-9a-f]{24} \(Acme\)\.\n$/)
  })

  it('creates websites, cookieless or not, with --json before or after the command', async () => {
    const accountId = await app.repositories.websites.createAccount('Acme')
    const plain = await json(['websites', 'create', '--account', accountId, '--domain', 'acme.test'])
    const run = await cli(['--json', 'websites', 'create', '--account', accountId, '--domain', 'quiet.test', '--cookieless'])
    expect(run.code).toBe(0)
    const cookieless = JSON.parse(run.stdout)
    expect(Object.keys(plain)).toEqual(['id'])
    expect(await app.repositories.websites.findWebsite(plain.id as string))
      .toEqual({ id: plain.id, accountId, domain: 'acme.test', cookieless: false, suspended: false, createdAt: expect.any(Date) })
    expect(await app.repositories.websites.findWebsite(cookieless.id))
      .toMatchObject({ accountId, domain: 'quiet.test', cookieless: true })
  })

  it('refuses a website for an unknown account', async () => {
    await fails(['websites', 'create', '--account', unknownId, '--domain', 'acme.test'], /account ffffffffffffffffffffffff does not exist/)
  })

  it('creates a website key that authenticates identify calls', async () => {
    const { websiteId } = await createTestWebsite(app)
    const result = await json(['keys', 'create', '--website', websiteId, '--name', 'prod'])
    expect(Object.keys(result)).toEqual(['id', 'key'])
    expect(result.id).toMatch(hexId)
    expect(result.key).toMatch(/^df_[A-Za-z0-9_-]{43}$/)
    const response = await identify(app, { auth: result.key as string, body: body() })
    expect(response.statusCode).toBe(200)
  })

  it('says that a new key is shown once', async () => {
    const { websiteId } = await createTestWebsite(app)
    const run = await cli(['keys', 'create', '--website', websiteId])
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/df_[A-Za-z0-9_-]{43}/)
    expect(run.stdout).toMatch(/shown only once/)
  })

  it('refuses a key for an unknown website', async () => {
    await fails(['keys', 'create', '--website', unknownId], /website ffffffffffffffffffffffff does not exist/)
  })

  it('suspends and resumes a website', async () => {
    const { websiteId, key } = await createTestWebsite(app)
    expect(await json(['websites', 'suspend', websiteId])).toEqual({ id: websiteId, suspended: true })
    expect((await identify(app, { auth: key, body: body() })).statusCode).toBe(403)
    expect(await json(['websites', 'resume', websiteId])).toEqual({ id: websiteId, suspended: false })
    expect((await identify(app, { auth: key, body: body() })).statusCode).toBe(200)
  })

  it('revokes a website key', async () => {
    const { key, keyId } = await createTestWebsite(app)
    expect(await json(['keys', 'revoke', keyId])).toEqual({ id: keyId, revoked: true })
    expect((await identify(app, { auth: key, body: body() })).statusCode).toBe(401)
  })

  it('creates an account token limited to some websites and expiring', async () => {
    const { accountId, websiteId } = await createTestWebsite(app)
    const { websiteId: otherWebsiteId } = await createTestWebsite(app, { accountId })
    const expires = '2099-06-30T12:00:00Z'
    const result = await json(['tokens', 'create', '--account', accountId, '--permissions', 'identify:write,analytics:read',
      '--websites', websiteId, '--name', 'ci', '--expires', expires])
    expect(Object.keys(result)).toEqual(['id', 'token'])
    const token = result.token as string
    expect(token).toMatch(/^dft_[A-Za-z0-9_-]{43}$/)
    expect(await app.repositories.credentials.findAccountToken(hashSecret(token))).toEqual({
      id: result.id,
      accountId,
      permissions: ['identify:write', 'analytics:read'],
      websiteIds: [websiteId],
      expiresAt: new Date(expires),
      revoked: false
    })
    expect((await identify(app, { auth: token, websiteId, body: body() })).statusCode).toBe(200)
    expect((await identify(app, { auth: token, websiteId: otherWebsiteId, body: body() })).statusCode).toBe(403)
  })

  it('creates a token for every website of the account by default, and says it is shown once', async () => {
    const { accountId } = await createTestWebsite(app)
    const run = await cli(['tokens', 'create', '--account', accountId, '--permissions', '*'])
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/shown only once/)
    const token = /dft_[A-Za-z0-9_-]{43}/.exec(run.stdout)![0]
    expect(await app.repositories.credentials.findAccountToken(hashSecret(token)))
      .toMatchObject({ accountId, permissions: ['*'], websiteIds: [], expiresAt: null })
  })

  it('refuses a token naming a website of another account, or an unknown account or website', async () => {
    const { accountId } = await createTestWebsite(app)
    const { websiteId: foreignWebsiteId } = await createTestWebsite(app)
    await Promise.all([
      fails(['tokens', 'create', '--account', accountId, '--permissions', 'identify:write', '--websites', foreignWebsiteId],
        // The Account API's answer: another account's website is reported like an unknown one.
        new RegExp(`website ${foreignWebsiteId} does not exist`)),
      fails(['tokens', 'create', '--account', accountId, '--permissions', 'identify:write', '--websites', unknownId],
        /website ffffffffffffffffffffffff does not exist/),
      fails(['tokens', 'create', '--account', unknownId, '--permissions', 'identify:write'], /account ffffffffffffffffffffffff does not exist/)
    ])
  })

  it('refuses bad --expires and --permissions values', async () => {
    const account = ['tokens', 'create', '--account', unknownId]
    await Promise.all([
      fails([...account, '--permissions', 'identify:write', '--expires', 'next week'], /--expires.*ISO 8601/),
      fails([...account, '--permissions', 'identify:write', '--expires', '2030-02-30'], /--expires.*ISO 8601/),
      fails([...account, '--permissions', 'identify:write', '--expires', '2001-01-01T00:00:00Z'], /--expires.*in the future/),
      fails([...account, '--permissions', 'identify:write,'], /--permissions.*non-empty/),
      fails([...account, '--permissions', 'identify:wrte'], /--permissions.*"identify:wrte" is unknown/),
      fails([...account, '--permissions', 'identify:write', '--websites', 'abc'], /--websites.*24 hex/)
    ])
  })

  it('revokes an account token', async () => {
    const { accountId, websiteId } = await createTestWebsite(app)
    const { id, token } = await app.repositories.credentials.createAccountToken({
      accountId, permissions: ['identify:write'], websiteIds: [], name: 'test', expiresAt: null
    })
    expect(await json(['tokens', 'revoke', id])).toEqual({ id, revoked: true })
    expect((await identify(app, { auth: token, websiteId, body: body() })).statusCode).toBe(401)
  })

  it('shows a profile after identify calls', async () => {
    const { websiteId, key } = await createTestWebsite(app)
    const first = { user_id: 'user 42', datafast_visitor_id: visitorId(), name: 'Ada', plan: { tier: 'pro' } }
    const second = { user_id: 'user 42', datafast_visitor_id: visitorId(), name: 'Ada L' }
    expect((await identify(app, { auth: key, body: first })).statusCode).toBe(200)
    expect((await identify(app, { auth: key, body: second })).statusCode).toBe(200)
    const result = await json(['profiles', 'get', '--website', websiteId, '--user', 'user 42'])
    expect(Object.keys(result)).toEqual(['id', 'websiteId', 'userId', 'metadata', 'visitorIds', 'createdAt', 'updatedAt'])
    const stored = await app.repositories.profiles.findProfile(websiteId, 'user 42')
    expect(result).toEqual({
      ...result,
      visitorIds: expect.arrayContaining([first.datafast_visitor_id, second.datafast_visitor_id])
    })
    expect(result.visitorIds).toHaveLength(2)
    expect(result).toEqual({
      id: stored!.id,
      websiteId,
      userId: 'user 42',
      metadata: { name: 'Ada L', plan: { tier: 'pro' } },
      visitorIds: stored!.visitorIds,
      createdAt: stored!.createdAt.toISOString(),
      updatedAt: stored!.updatedAt.toISOString()
    })
  })

  it('reports ids that are well-formed but unknown', async () => {
    const { websiteId } = await createTestWebsite(app)
    await Promise.all([
      fails(['websites', 'suspend', unknownId], /website ffffffffffffffffffffffff does not exist/),
      fails(['websites', 'resume', unknownId], /website ffffffffffffffffffffffff does not exist/),
      fails(['keys', 'revoke', unknownId], /website key ffffffffffffffffffffffff does not exist/),
      fails(['tokens', 'revoke', unknownId, '--json'], /account token ffffffffffffffffffffffff does not exist/),
      fails(['profiles', 'get', '--website', websiteId, '--user', 'nobody'], /no profile for user "nobody"/)
    ])
  })

  it('rejects malformed ids before connecting', async () => {
    await Promise.all([
      fails(['websites', 'suspend', '123'], /'123'.*24 hex/),
      fails(['keys', 'revoke', 'ffffffffffffffffffffffffff'], /24 hex/),
      fails(['keys', 'create', '--website', 'not-an-id', '--json'], /--website.*'not-an-id'.*24 hex/),
      fails(['profiles', 'get', '--website', 'zzzzzzzzzzzzzzzzzzzzzzzz', '--user', 'u1'], /--website.*24 hex/)
    ])
  })

  it('rejects missing options, unknown commands and extra arguments', async () => {
    await Promise.all([
      fails(['accounts', 'create'], /required option '--name <name>' not specified/),
      fails(['websites', 'create', '--account', unknownId], /required option '--domain <domain>' not specified/),
      fails(['tokens', 'create', '--account', unknownId], /required option '--permissions <list>' not specified/),
      fails(['accounts', 'delete', '--json'], /unknown command 'delete'/),
      fails(['frobnicate'], /unknown command 'frobnicate'/),
      fails(['keys', 'revoke', unknownId, unknownId], /too many arguments/),
      fails([], /Usage: cli/)
    ])
  })

  it('runs as a process of its own: the entry point passes argv, env, stdin, stdout, stderr and the exit code', async () => {
    const { websiteId } = await createTestWebsite(app)
    const run = await spawnCli(['--json', 'profiles', 'import', '--website', websiteId, '-'], {}, [JSON.stringify(body('spawned')), '{oops'].join('\n'))
    expect(run.code).toBe(1)
    expect(JSON.parse(run.stdout)).toEqual({ counts: { created: 1, updated: 0, unchanged: 0, skipped: 0, failed: 1 } })
    expect(run.stderr.split('\n')).toContain('line 2: not valid JSON')
    expect(await app.repositories.profiles.findProfile(websiteId, 'spawned')).not.toBeNull()
  })

  it('ends its process when a command is done, leaving nothing open: a write that tells an unreachable Redis', async () => {
    const { keyId } = await createTestWebsite(app)
    // Nothing listens on port 1: the announcement fails, and the process must still end at once (a hang is killed at 60 s: code null).
    const revoked = await spawnCli(['--json', 'keys', 'revoke', keyId], { REDIS_URL: 'redis://127.0.0.1:1' })
    expect(revoked.code, revoked.stderr).toBe(0)
    expect(JSON.parse(revoked.stdout)).toEqual({ id: keyId, revoked: true })
  })

  it('needs MONGO_URL, a valid configuration and a reachable database', async () => {
    await Promise.all([
      fails(['accounts', 'create', '--name', 'Acme', '--json'], /MONGO_URL is not set/, { MONGO_URL: '' }),
      fails(['accounts', 'create', '--name', 'Acme'], /MONGO_TIMEOUT_MS="soon" is invalid/, { MONGO_TIMEOUT_MS: 'soon' }),
      fails(['accounts', 'create', '--name', 'Acme'], /cannot reach the database/,
        { MONGO_URL: 'mongodb://127.0.0.1:1/unreachable', MONGO_TIMEOUT_MS: '200' })
    ])
  })
})
