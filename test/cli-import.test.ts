import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { importNdjson, type ImportOptions, type ImportProgress } from '../src/cli/profiles-import.js'
import { identifyRules } from '../src/config.js'
import { checkBatchItems, storeCheckedBatch } from '../src/domain/identify-batch.js'
import { appWithCli } from './cli-helper.js'
import { createTestWebsite, visitorId } from './helper.js'

/*
 * `cli profiles import` (docs/api.md#profiles-import): NDJSON identify bodies
 * stored through identifyBatch, chunk by chunk, on the real database.
 */

const { app, cli } = await appWithCli()
const rules = identifyRules(app.config)
const directory = await mkdtemp(join(tmpdir(), 'import-'))

let fileCount = 0
async function ndjsonFile (lines: Array<string | Buffer>): Promise<string> {
  const path = join(directory, `${String(++fileCount)}.ndjson`)
  await writeFile(path, Buffer.concat(lines.map((line) => Buffer.concat([Buffer.from(line), Buffer.from('\n')]))))
  return path
}

/** What the CLI passes importNdjson: checkBatchItems and storeCheckedBatch, the two halves of identifyBatch. */
const batchOf = (websiteId: string): Pick<ImportOptions, 'check' | 'store'> => ({
  check: (items) => checkBatchItems(items, rules),
  store: async (checked) => await storeCheckedBatch(app.repositories.profiles, { websiteId, cookieless: false }, checked, rules.limits)
})

const body = (userId: string, metadata: Record<string, unknown> = {}, visitor = visitorId()): string =>
  JSON.stringify({ user_id: userId, datafast_visitor_id: visitor, ...metadata })

const zero = { created: 0, updated: 0, unchanged: 0, skipped: 0, failed: 0 }

describe('importNdjson', () => {
  it('stores chunk by chunk in file order: a user named across a chunk boundary ends with the later fields; refusals name their lines', async () => {
    const site = await createTestWebsite(app)
    const lines = [
      body('a', { plan: 'free', seen: 1 }),
      '{"user_id": ',
      body('b'),
      '',
      body('a', { plan: 'pro' }),
      JSON.stringify({ user_id: 'c', datafast_visitor_id: 'not-a-uuid' }),
      '{"user_id":"d","user_id":"e"}'
    ]
    const seen: ImportProgress[] = []
    const report = await importNdjson(Readable.from([Buffer.from(lines.join('\r\n'))]), {
      chunkSize: 2,
      ...batchOf(site.websiteId),
      onProgress: (progress) => { seen.push({ ...progress }) }
    })
    expect(report.counts).toStrictEqual({ ...zero, created: 2, updated: 1, failed: 3 })
    expect(report.refused.map(({ line }) => line)).toStrictEqual([2, 6, 7])
    expect(report.refused[0]!.message).toBe('not valid JSON')
    expect(report.refused[1]!.message).toMatch(/datafast_visitor_id/)
    expect(report.refused[2]!.message).toMatch(/repeats the key "user_id"/)
    expect((await app.repositories.profiles.findProfile(site.websiteId, 'a'))?.metadata).toStrictEqual({ plan: 'pro', seen: 1 })
    expect(seen.at(-1)).toStrictEqual({ lines: 7, items: 4 })
    expect(seen.map(({ items }) => items)).toStrictEqual([2, 4, 4])
  })

  it('lists at most 100 refused lines and counts them all', async () => {
    const lines = Array.from({ length: 150 }, (_, index) => `not json ${String(index)}`)
    const report = await importNdjson(Readable.from([Buffer.from(lines.join('\n'))]), {
      chunkSize: 1000,
      check: () => { throw new Error('nothing valid to check') },
      store: async () => { throw new Error('nothing valid to store') },
      onProgress: () => {}
    })
    expect(report.counts.failed).toBe(150)
    expect(report.refused).toHaveLength(100)
    expect(report.refused.at(-1)?.line).toBe(100)
  })

  it('lists the first 100 refused lines when a chunk\'s refusals come back after the next chunk\'s unparsable lines', async () => {
    const site = await createTestWebsite(app)
    const lines = [JSON.stringify({ user_id: 'null', datafast_visitor_id: visitorId() }), ...Array.from({ length: 120 }, () => '{oops')]
    const batch = batchOf(site.websiteId)
    const report = await importNdjson(Readable.from([Buffer.from(lines.join('\n'))]), {
      chunkSize: 1,
      check: batch.check,
      // The first chunk is still being stored while the next lines are read.
      store: async (checked) => await new Promise((resolve) => setTimeout(resolve, 50)).then(async () => await batch.store(checked)),
      onProgress: () => {}
    })
    expect(report.counts.failed).toBe(121)
    expect(report.refused.map(({ line }) => line)).toStrictEqual(Array.from({ length: 100 }, (_, index) => index + 1))
    expect(report.refused[0]!.message).toMatch(/placeholder/)
  })

  it('stores chunk k + 1 only after chunk k is stored, and checks it meanwhile', async () => {
    const site = await createTestWebsite(app)
    const batch = batchOf(site.websiteId)
    const events: string[] = []
    let stored = 0
    const lines = Array.from({ length: 6 }, (_, index) => body('same user', { step: index }))
    await importNdjson(Readable.from([Buffer.from(lines.join('\n'))]), {
      chunkSize: 2,
      check: (items) => {
        events.push(`check ${String((items[0] as { step: number }).step)}`)
        return batch.check(items)
      },
      store: async (checked) => {
        const chunk = stored++
        events.push(`store ${chunk} begins`)
        await new Promise((resolve) => setTimeout(resolve, 30))
        const outcome = await batch.store(checked)
        events.push(`store ${chunk} ends`)
        return outcome
      },
      onProgress: () => {}
    })
    expect(events).toStrictEqual([
      'check 0', 'store 0 begins', 'check 2', 'store 0 ends', 'store 1 begins', 'check 4', 'store 1 ends', 'store 2 begins', 'store 2 ends'
    ])
    expect((await app.repositories.profiles.findProfile(site.websiteId, 'same user'))?.metadata).toStrictEqual({ step: 5 })
  })

  it('stores up to three chunks of different users and visitors side by side; a chunk naming a visitor of one being stored waits for it', async () => {
    const site = await createTestWebsite(app)
    const batch = batchOf(site.websiteId)
    const shared = visitorId()
    let storing = 0
    const most: number[] = []
    // Chunks of two lines: the first names the shared visitor, the second moves it to another user, the next three are all new.
    const lines = [
      body('first owner', {}, shared), body('parallel 1'),
      body('takes the visitor', {}, shared), body('parallel 2'),
      ...Array.from({ length: 6 }, (_, index) => body(`parallel ${String(index + 3)}`))
    ]
    const report = await importNdjson(Readable.from([Buffer.from(lines.join('\n'))]), {
      chunkSize: 2,
      check: batch.check,
      store: async (checked) => {
        most.push(++storing)
        await new Promise((resolve) => setTimeout(resolve, 50))
        const outcome = await batch.store(checked)
        storing--
        return outcome
      },
      onProgress: () => {}
    })
    expect(report.counts).toEqual({ ...zero, created: 10 })
    // The second waited for the first; the third and fourth joined it; the fifth waited for those three.
    expect(most).toEqual([1, 1, 2, 3, 1])
    expect((await app.repositories.profiles.findVisitorProfile(site.websiteId, shared))?.userId).toBe('takes the visitor')
  })
})

describe.concurrent('cli profiles import', { timeout: 120_000 }, () => {
  it('imports 1,200 lines with plain progress lines off a terminal, lists refused lines, exits 1; the same file again is all unchanged', async () => {
    const site = await createTestWebsite(app)
    const lines = Array.from({ length: 1200 }, (_, index) => body(`user ${String(index)}`, { n: index }))
    lines[41] = '{oops'
    lines[1099] = JSON.stringify({ user_id: 'null', datafast_visitor_id: visitorId() })
    const file = await ndjsonFile(lines)

    const first = await cli(['profiles', 'import', '--website', site.websiteId, '--progress-every', '500', file])
    expect(first.code).toBe(1)
    expect(first.stdout).toBe('created 1198, updated 0, unchanged 0, skipped 0, failed 2\n')
    const stderr = first.stderr.split('\n')
    expect(stderr).toContain('line 42: not valid JSON')
    expect(stderr.some((line) => /^line 1100: user_id .*placeholder/.test(line))).toBe(true)
    expect(stderr).toContain('2 line(s) refused')
    const progress = stderr.filter((line) => line.startsWith('import: '))
    // Past --progress-every: the first chunk (1,000 bodies, one line refused among them) or the second (199), stored side by side,
    // whichever ends first; reading runs ahead while they are stored.
    expect(progress[0]).toMatch(/^import: 1,(00[1-9]|0[1-9]\d|1\d\d|200) lines read, (199|1,000) stored /)
    expect(progress.at(-1)).toMatch(/^import: 1,200 lines read, 1,199 stored \([\d,]+ profiles\/s\), 100% of the file, ETA 0 s$/)
    // No bar, no carriage return, no escape sequence: a log file stays readable.
    expect(['\r', '\u001b'].filter((control) => first.stderr.includes(control))).toStrictEqual([])
    expect((await app.repositories.profiles.findProfile(site.websiteId, 'user 1199'))?.metadata).toStrictEqual({ n: 1199 })

    const again = await cli(['--json', 'profiles', 'import', '--website', site.websiteId, file])
    expect(again.code).toBe(1)
    expect(JSON.parse(again.stdout)).toStrictEqual({ counts: { ...zero, unchanged: 1198, failed: 2 } })
    expect(again.stdout.trimEnd().split('\n')).toHaveLength(1)
  })

  it('reads standard input with -, prints one JSON object with --json and exits 0 when nothing is refused', async () => {
    const site = await createTestWebsite(app)
    const run = await cli(['profiles', 'import', '--json', '--website', site.websiteId, '-'], {}, [body('x'), body('y'), body('x', { plan: 'pro' })].join('\n'))
    expect(run.stderr).toMatch(/^(import: .*\n)*$/)
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout)).toStrictEqual({ counts: { ...zero, created: 2, updated: 1 } })
  })

  it('refuses a line that is not UTF-8 with the API\'s message, and stores UTF-8 text as it is', async () => {
    const site = await createTestWebsite(app)
    const broken = Buffer.concat([Buffer.from(`{"user_id":"broken","datafast_visitor_id":"${visitorId()}","name":"`), Buffer.from([0xc3, 0x28]), Buffer.from('"}')])
    const run = await cli(['profiles', 'import', '--website', site.websiteId, await ndjsonFile([body('x', { name: 'Zoë 日本 😀' }), broken, body('y')])])
    expect(run.stderr.split('\n')).toContain('line 2: not valid UTF-8')
    expect(run.code).toBe(1)
    expect(run.stdout).toBe('created 2, updated 0, unchanged 0, skipped 0, failed 1\n')
    expect((await app.repositories.profiles.findProfile(site.websiteId, 'x'))?.metadata).toStrictEqual({ name: 'Zoë 日本 😀' })
    expect(await app.repositories.profiles.findProfile(site.websiteId, 'broken')).toBeNull()
  })

  it('a cookieless website skips every valid line', async () => {
    const site = await createTestWebsite(app, { cookieless: true })
    const run = await cli(['--json', 'profiles', 'import', '--website', site.websiteId, await ndjsonFile([body('x'), body('y')])])
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout)).toStrictEqual({ counts: { ...zero, skipped: 2 } })
  })

  it('refuses an unknown website and a missing file before importing anything', async () => {
    const unknown = await cli(['profiles', 'import', '--website', 'ffffffffffffffffffffffff', await ndjsonFile([body('x')])])
    expect(unknown.stderr).toMatch(/website ffffffffffffffffffffffff does not exist/)
    expect(unknown.code).toBe(1)
    const site = await createTestWebsite(app)
    const missing = await cli(['profiles', 'import', '--website', site.websiteId, join(directory, 'none.ndjson')])
    expect(missing.stderr).toMatch(/cannot read .*none\.ndjson: ENOENT/)
    expect(missing.code).toBe(1)
  })
})
