import { randomUUID } from 'node:crypto'
import { ObjectId } from 'mongodb'
import { afterAll, describe, expect, inject, it } from 'vitest'
import type { App } from '../src/app.js'
import { identifyRules } from '../src/config.js'
import { migrate } from '../src/storage/migrations/index.js'
import { profileIncarnations } from '../src/storage/migrations/profile-incarnations.js'
import { runMigration } from '../src/storage/migrations/runner.js'
import { ProfilesRepository, profileIdFor } from '../src/storage/repositories/profiles.js'
import { withDatabaseName } from '../tools/local-database.js'
import { buildTestApp, visitorId } from './helper.js'

// docs/api.md#profiles-upgrading-a-store: a legacy store is upgraded once, at start (docs/storage.md#migrations), then used like any other.

const app = await buildTestApp()
const dbName = `legacy_upgrade_${randomUUID().slice(0, 8)}`
const db = app.mongo.client.db(dbName)
let started: App | undefined
afterAll(async () => {
  await started?.close()
  await db.dropDatabase()
  await app.close()
})

const websiteId = new ObjectId().toHexString()
const limits = identifyRules(app.config).limits

/** A profile and its links exactly as the earlier version wrote them. */
async function writeLegacyProfile (userId: string, visitors: string[]): Promise<ObjectId> {
  const _id = profileIdFor(websiteId, userId)
  const now = new Date()
  await db.collection('profiles').insertOne({ _id, websiteId: new ObjectId(websiteId), userId, metadata: { plan: 'pro' }, createdAt: now, updatedAt: now })
  await db.collection<{ _id: string }>('visitorLinks').insertMany(visitors.map((visitor, index) => (
    { _id: `${websiteId}:${visitor}`, websiteId: new ObjectId(websiteId), visitorId: visitor, profileId: _id, linkedAt: new Date(now.getTime() + index) })))
  return _id
}

describe('a store written by the version before incarnations', () => {
  it('is upgraded at start, once: its profiles show their visitors, merge, and are erased with every link', async () => {
    const [first, second, third] = [visitorId(), visitorId(), visitorId()]
    const erased = await writeLegacyProfile('legacy-erased', [first, second])
    await writeLegacyProfile('legacy-kept', [third])
    // Many more, all upgraded by one update of each collection.
    for (let index = 0; index < 120; index++) await writeLegacyProfile(`legacy-${String(index)}`, [visitorId()])
    const repository = new ProfilesRepository(db)

    // The service's start on the legacy store: the repositories plugin runs the migrations.
    started = await buildTestApp({ MONGO_URL: withDatabaseName(inject('mongoUrl'), dbName) })
    expect(await db.collection('profiles').countDocuments({ incarnation: { $exists: false } })).toBe(0)
    expect(await db.collection('visitorLinks').countDocuments({ profileIncarnation: { $exists: false } })).toBe(0)
    // Recorded as done, and nothing left to upgrade were it run again.
    expect(await runMigration(db, profileIncarnations)).toBeNull()
    expect(await profileIncarnations.run(db)).toEqual({ profiles: 0, visitorLinks: 0 })
    expect(await repository.findProfile(websiteId, 'legacy-119')).toMatchObject({ visitorIds: [expect.any(String)] })

    expect(await repository.findProfile(websiteId, 'legacy-erased')).toMatchObject({ metadata: { plan: 'pro' }, visitorIds: [first, second] })
    const upsert = async (userId: string, visitor: string, metadata: Record<string, unknown>) =>
      await repository.upsertProfile({ websiteId, userId, visitorId: visitor, metadata, limits })
    expect(await upsert('legacy-kept', third, { plan: 'pro' })).toMatchObject({ created: false, changed: false })
    expect(await upsert('legacy-kept', first, { seats: 3 })).toMatchObject({ created: false, changed: true })
    expect(await repository.findProfile(websiteId, 'legacy-kept')).toMatchObject({ metadata: { plan: 'pro', seats: 3 }, visitorIds: [third, first] })

    expect(await repository.eraseProfile(websiteId, erased.toHexString())).toEqual({ profileId: erased.toHexString(), visitorLinks: 1 })
    expect(await db.collection('visitorLinks').countDocuments({ profileId: erased })).toBe(0)
    expect(await repository.findVisitorProfile(websiteId, second)).toBeNull()
    expect(await upsert('legacy-erased', second, {})).toMatchObject({ created: true })
  })

  it('lets replicas that start together on one store all start, and the step is recorded as done', async () => {
    const quiet = { info: () => {}, debug: () => {} }
    for (let round = 0; round < 5; round++) {
      const fresh = app.mongo.client.db(`${dbName}_${String(round)}`)
      try {
        await Promise.all([migrate(fresh, quiet), migrate(fresh, quiet), migrate(fresh, quiet)])
        expect(await fresh.collection<{ _id: string }>('schemaUpgrades').findOne({ _id: profileIncarnations.name })).not.toBeNull()
      } finally {
        await fresh.dropDatabase()
      }
    }
  })
})
