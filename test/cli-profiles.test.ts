import { describe, expect, it } from 'vitest'
import { appWithCli } from './cli-helper.js'
import { createTestWebsite, visitorId } from './helper.js'
import { identified, P_KEYS, profilesCall, walkProfiles, type ProfileJson } from './profiles-helper.js'

/*
 * `cli profiles list | delete | export` (docs/api.md#profiles-command-line), run
 * against the same database as an app that checks what they read and erased.
 */

const { app, cli } = await appWithCli()

async function succeeds (args: string[]): Promise<string> {
  const run = await cli(args)
  expect(run.stderr).toBe('')
  expect(run.code).toBe(0)
  return run.stdout
}

async function fails (args: string[], message: RegExp): Promise<void> {
  const run = await cli(args)
  expect(run.stderr).toMatch(message)
  expect(run.code).toBe(1)
  expect(run.stdout).toBe('')
}

/** The export's order is the database's; the API's is by id. */
const byId = (profiles: ProfileJson[]): ProfileJson[] => [...profiles].sort((a, b) => a.id.localeCompare(b.id))

let counter = 0
const newUserId = (): string => `cli user ${String(++counter)}`

describe.concurrent('cli profiles', { timeout: 120_000 }, () => {
  it('list: the first profiles in id order, as P, with --limit and whether more follow', async () => {
    const site = await createTestWebsite(app)
    for (let index = 0; index < 3; index++) await identified(app, site, newUserId(), visitorId(), { n: index })
    const all = await walkProfiles(app, site.key)
    const listed = JSON.parse(await succeeds(['profiles', 'list', '--website', site.websiteId, '--limit', '2', '--json'])) as { profiles: ProfileJson[], more: boolean }
    expect(listed).toEqual({ profiles: all.slice(0, 2), more: true })
    const text = await succeeds(['profiles', 'list', '--website', site.websiteId])
    expect(text.trimEnd().split('\n')).toHaveLength(4)
    expect(text).toContain(`${all[0]!.id}  ${JSON.stringify(all[0]!.userId)}  1 visitor(s)  updated ${all[0]!.updatedAt}`)
    expect(text).toMatch(/^3 profile\(s\)\.$/m)
  })

  it('delete: erases the user\'s profile and its links, says what it erased, and fails the second time', async () => {
    const site = await createTestWebsite(app)
    const userId = newUserId()
    const visitors = [visitorId(), visitorId()]
    const { profileId } = await identified(app, site, userId, visitors[0]!, { email: 'ada@example.com' })
    await identified(app, site, userId, visitors[1]!)
    const erased = JSON.parse(await succeeds(['profiles', 'delete', '--website', site.websiteId, '--user', userId, '--json'])) as unknown
    expect(erased).toEqual({ profileId, erased: true, visitorLinks: 2 })
    expect((await profilesCall(app, { path: `/profiles/${profileId}`, auth: site.key })).statusCode).toBe(404)
    for (const visitor of visitors) expect((await profilesCall(app, { path: `/visitors/${visitor}/profile`, auth: site.key })).statusCode).toBe(404)
    await fails(['profiles', 'delete', '--website', site.websiteId, '--user', userId], /has no profile for user "cli user \d+"/)

    const other = newUserId()
    await identified(app, site, other, visitorId())
    expect(await succeeds(['profiles', 'delete', '--website', site.websiteId, '--user', other]))
      .toMatch(/^Erased profile [0-9a-f]{24} of website [0-9a-f]{24} and its 1 visitor link\(s\)\.\n$/)
  })

  it('export: every profile once as one P a line, the same as the API shows; no progress line when stderr is no terminal', async () => {
    const site = await createTestWebsite(app)
    const moved = visitorId()
    const first = newUserId()
    await identified(app, site, first, moved)
    for (let index = 0; index < 5; index++) await identified(app, site, newUserId(), visitorId(), { n: index, nested: { a: [1, 'two'] } })
    // A visitor that moved: its former profile lists its visitors from the links.
    await identified(app, site, first, visitorId())
    await identified(app, site, newUserId(), moved)
    const output = await succeeds(['profiles', 'export', '--website', site.websiteId])
    expect(output.endsWith('\n')).toBe(true)
    const lines = output.trimEnd().split('\n').map((line) => JSON.parse(line) as ProfileJson)
    for (const line of lines) expect(Object.keys(line)).toEqual(P_KEYS)
    expect(byId(lines)).toEqual(await walkProfiles(app, site.key))
    expect(lines).toHaveLength(7)
  })

  it('export of a website without profiles prints nothing', async () => {
    const site = await createTestWebsite(app)
    expect(await succeeds(['profiles', 'export', '--website', site.websiteId])).toBe('')
  })

  it('refuses an unknown website, a malformed id and a bad --limit', async () => {
    const unknown = 'ffffffffffffffffffffffff'
    await Promise.all([
      fails(['profiles', 'export', '--website', unknown], /website ffffffffffffffffffffffff does not exist/),
      fails(['profiles', 'list', '--website', unknown], /website ffffffffffffffffffffffff does not exist/),
      fails(['profiles', 'delete', '--website', unknown, '--user', 'u'], /website ffffffffffffffffffffffff does not exist/),
      fails(['profiles', 'export', '--website', 'nope'], /--website.*24 hex/),
      fails(['profiles', 'list', '--website', unknown, '--limit', '0'], /--limit.*whole number from 1 to 250/),
      fails(['profiles', 'list', '--website', unknown, '--limit', '251'], /--limit.*whole number from 1 to 250/),
      fails(['profiles', 'delete', '--website', unknown], /--user/)
    ])
  })
})

describe('the export in batches', () => {
  it('yields every profile once, with the visitors of those read from their links, whatever the batch size', async () => {
    const site = await createTestWebsite(app)
    const many = newUserId()
    for (let index = 0; index < 20; index++) await identified(app, site, many, visitorId())
    for (let index = 0; index < 6; index++) await identified(app, site, newUserId(), visitorId())
    const shown = JSON.parse(JSON.stringify(await walkProfiles(app, site.key, { limit: 250 }))) as ProfileJson[]
    for (const batchSize of [1, 2, 3, 7, 1000]) {
      const exported: ProfileJson[] = []
      for await (const profile of app.repositories.profiles.exportProfiles(site.websiteId, batchSize)) exported.push(JSON.parse(JSON.stringify(profile)) as ProfileJson)
      expect(byId(exported), `batches of ${String(batchSize)}`).toEqual(shown)
    }
  })
})
