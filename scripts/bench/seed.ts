import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ObjectId } from 'mongodb'
import { connectDatabase } from '../../src/storage/database.js'
import { IDENTIFY_WRITE } from '../../src/domain/credentials.js'
import { createRepositories, ensureIndexes } from '../../src/storage/repositories/index.js'
import { profileIdFor, type ProfilesRepository } from '../../src/storage/repositories/profiles.js'
import { provisionWebsite } from '../../tools/provision.js'
import { root } from './processes.js'
import { seedMetadata, seedUserId, seedVisitorId } from './scenarios.js'

export interface Seeded {
  accountId: string
  websiteId: string
  /** Raw `df_` key of the website. */
  key: string
  /** Raw `dft_` token with identify:write on the website. */
  token: string
}

const BATCH = 1000

/** Where and with which credential a load run sends its calls; `read` reads profiles with the key (each call sets its own path). */
export function identifyTarget (seeded: Seeded, credential: 'key' | 'token' | 'read' | 'batch'): { path: string, authorization: string } {
  if (credential === 'batch') return { path: '/api/v1/identify/batch', authorization: `Bearer ${seeded.key}` }
  if (credential === 'token') return { path: `/api/v1/identify?websiteId=${seeded.websiteId}`, authorization: `Bearer ${seeded.token}` }
  return { path: credential === 'read' ? '/api/v1/profiles' : '/api/v1/identify', authorization: `Bearer ${seeded.key}` }
}

/**
 * Drops the bench database and fills it through the repositories: the
 * credentials, then the profiles and their visitor links in batches
 * (ProfilesRepository.importProfiles). run.ts checks that the server cannot
 * tell them from profiles it created itself by replaying seeded bodies, which
 * must come back `unchanged`.
 */
export async function seedDatabase (url: string, profiles: number, log: (line: string) => void): Promise<Seeded> {
  // A long timeout: seeding sends inserts of a thousand documents each.
  const { client, db } = await connectDatabase(url, 30_000)
  try {
    await db.dropDatabase()
    const repositories = createRepositories(db)
    await ensureIndexes(repositories)
    const { accountId, websiteId, key } = await provisionWebsite(repositories, { accountName: 'Bench account', domain: 'bench.example.com', keyName: 'bench' })
    const { token } = await repositories.credentials.createAccountToken({
      accountId, permissions: [IDENTIFY_WRITE], websiteIds: [websiteId], name: 'bench', expiresAt: null
    })

    const started = Date.now()
    await insertUsers(repositories.profiles, websiteId, profiles, seedUserId, 0, (done) => {
      if (done % 10_000 === 0 || done === profiles) {
        log(`  seeded ${done.toLocaleString('en-US')} / ${profiles.toLocaleString('en-US')} profiles (${((Date.now() - started) / 1000).toFixed(1)} s)`)
      }
    })
    return { accountId, websiteId, key, token }
  } finally {
    await client.close()
  }
}

/**
 * New users, each with one visitor, inserted BATCH at a time by
 * ProfilesRepository.importProfiles (one insertMany of profiles, one of links):
 * user i is `userIdOf(i)`, with the visitor and metadata of seed number `first + i`.
 */
async function insertUsers (profiles: ProfilesRepository, websiteId: string, count: number, userIdOf: (i: number) => string, first: number, progress: (done: number) => void = () => {}): Promise<void> {
  for (let start = 0; start < count; start += BATCH) {
    const users = Array.from({ length: Math.min(BATCH, count - start) }, (_, index) => start + index)
    await profiles.importProfiles(websiteId, users.map((i) => ({ userId: userIdOf(i), visitorId: seedVisitorId(first + i), metadata: seedMetadata(first + i) })))
    progress(start + users.length)
  }
}

/**
 * The import's floor: as many new users as the import loaded, of the same
 * shape (`insert-user-i`, as long as its `import-user-i`, with the visitors and
 * metadata of the seed numbers after the import's), inserted by the driver
 * alone in bulk at the same collection size. No CLI, parsing, checks or reads.
 */
export async function timeBulkInserts (url: string, websiteId: string, first: number, users: number): Promise<{ users: number, seconds: number }> {
  const { client, db } = await connectDatabase(url, 30_000)
  try {
    const started = performance.now()
    await insertUsers(createRepositories(db).profiles, websiteId, users, (i) => `insert-user-${i}`, first)
    return { users, seconds: (performance.now() - started) / 1000 }
  } finally {
    await client.close()
  }
}

/** The launcher's PostgreSQL (tools/local-database.ts): its version and the DocumentDB extension installed in it. */
const PG_CONFIG = '/usr/lib/postgresql/15/bin/pg_config'

/** The engine the bench ran on, and the pool the server (and every floor) connects with. */
export interface DatabaseDescription {
  name: string
  /** The driver's maxPoolSize for this URL: its default unless MONGO_URL sets one. */
  poolSize: number
}

/**
 * DocumentDB when the launcher started it: the extension's installed version,
 * the commit scripts/documentdb/build.sh pins, and PostgreSQL's version (its
 * gateway's buildInfo names only the MongoDB version it speaks). Otherwise
 * the MongoDB at MONGO_URL, by its buildInfo.
 */
export async function describeDatabase (url: string, embedded: boolean): Promise<DatabaseDescription> {
  const { client, db } = await connectDatabase(url, 10_000)
  try {
    const poolSize = client.options.maxPoolSize
    const info = await db.admin().command({ buildInfo: 1 }) as { version?: string }
    if (!embedded) return { name: `MongoDB ${info.version ?? '(unknown version)'} at MONGO_URL`, poolSize }
    const [postgres = 'PostgreSQL', sharedir = ''] = execFileSync(PG_CONFIG, ['--version', '--sharedir'], { encoding: 'utf8' }).split('\n')
    const version = /^default_version\s*=\s*'([^']+)'/m.exec(readFileSync(join(sharedir, 'extension', 'documentdb.control'), 'utf8'))?.[1] ?? '(unknown version)'
    const commit = /"documentdb\|[^|]*\|[^|]*\|([0-9a-f]{7})/.exec(readFileSync(join(root, 'scripts', 'documentdb', 'build.sh'), 'utf8'))?.[1] ?? 'unknown'
    return { name: `DocumentDB ${version} (commit ${commit}) on ${postgres.replace(/ \(.*\)$/, '')}, started by the bench`, poolSize }
  } finally {
    await client.close()
  }
}

/**
 * Median time of a findOne by `_id` of profiles spread over the collection.
 * It should not depend on --profiles: were it to grow with the collection,
 * the database would be scanning instead of using the `_id` index.
 */
export async function timeIdLookups (url: string, websiteId: string, profiles: number): Promise<number> {
  const { client, db } = await connectDatabase(url, 60_000)
  try {
    // The lookup alone, as db-floor.ts writes: the repository's reads add the visitor links.
    const collection = db.collection<{ _id: ObjectId }>('profiles')
    const times: number[] = []
    for (const share of [0.1, 0.3, 0.5, 0.7, 0.9]) {
      const started = performance.now()
      await collection.findOne({ _id: profileIdFor(websiteId, seedUserId(Math.floor(share * profiles))) })
      times.push(performance.now() - started)
    }
    return times.sort((a, b) => a - b)[2] ?? 0
  } finally {
    await client.close()
  }
}

/**
 * What the database alone streams of one website's profiles: one driver
 * cursor over the export's query, each document only counted. The export
 * cannot be faster than this.
 */
export async function timeScan (url: string, websiteId: string): Promise<{ profiles: number, seconds: number }> {
  const { client, db } = await connectDatabase(url, 60_000)
  try {
    const started = performance.now()
    let profiles = 0
    const cursor = db.collection('profiles').find({ websiteId: new ObjectId(websiteId) }, { sort: { _id: 1 }, batchSize: 1000 })
    while (await cursor.next() !== null) profiles++
    return { profiles, seconds: (performance.now() - started) / 1000 }
  } finally {
    await client.close()
  }
}
