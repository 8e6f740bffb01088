import type { Db } from 'mongodb'
import type { ProfileOutcome } from '../../domain/identify-batch.js'
import type { IdentifyInput } from '../../domain/identify.js'
import type { Metadata, ProfileLimits } from '../../domain/metadata.js'
import type { Profile } from '../../schemas/profiles.js'
import type { BatchEntryResult } from './profile-batch.js'
import { importProfiles, upsertProfiles } from './profile-batch-executor.js'
import type { Erasure } from '../../domain/profile-reads.js'
import { eraseProfile } from './profile-erasure.js'
import { exportProfiles, findProfile, findProfileById, findVisitorProfile, listProfiles, type ProfilePage } from './profile-reads.js'
import { ensureProfileIndexes, profileCollections, type ProfileCollections } from './profile-store.js'
import { upsertProfile, type UpsertProfileInput } from './profile-upsert.js'

export { LISTED_VISITORS_MAX, profileIdFor } from './profile-documents.js'
export type { Profile }

/** Profiles and visitor links, one job module a method (docs/storage.md). */
export class ProfilesRepository {
  private readonly collections: ProfileCollections

  constructor (db: Db) {
    this.collections = profileCollections(db)
  }

  /** Indexes only: the legacy upgrade is a migration step (src/storage/migrations/). */
  async ensureIndexes (): Promise<void> {
    await ensureProfileIndexes(this.collections)
  }

  async upsertProfile (input: UpsertProfileInput): Promise<ProfileOutcome> {
    return await upsertProfile(this.collections, input)
  }

  async upsertProfiles (websiteId: string, entries: IdentifyInput[], limits: ProfileLimits): Promise<BatchEntryResult[]> {
    return await upsertProfiles(this.collections, websiteId, entries, limits)
  }

  async importProfiles (websiteId: string, entries: Array<{ userId: string, visitorId: string, metadata: Metadata }>): Promise<void> {
    await importProfiles(this.collections, websiteId, entries)
  }

  async findProfile (websiteId: string, userId: string): Promise<Profile | null> {
    return await findProfile(this.collections, websiteId, userId)
  }

  async findProfileById (websiteId: string, profileId: string): Promise<Profile | null> {
    return await findProfileById(this.collections, websiteId, profileId)
  }

  async findVisitorProfile (websiteId: string, visitorId: string): Promise<Profile | null> {
    return await findVisitorProfile(this.collections, websiteId, visitorId)
  }

  async listProfiles (websiteId: string, options: { after: string | null, limit: number }): Promise<ProfilePage> {
    return await listProfiles(this.collections, websiteId, options)
  }

  exportProfiles (websiteId: string, batchSize = 1000): AsyncGenerator<Profile> {
    return exportProfiles(this.collections, websiteId, batchSize)
  }

  async eraseProfile (websiteId: string, profileId: string): Promise<Erasure | null> {
    return await eraseProfile(this.collections, websiteId, profileId)
  }
}
