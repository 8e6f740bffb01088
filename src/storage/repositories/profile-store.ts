import { setTimeout as sleep } from 'node:timers/promises'
import type { Collection, Db, ObjectId } from 'mongodb'
import type { ProfileDocument, VisitorLinkDocument } from './profile-documents.js'

export interface ErasedIncarnationDocument {
  _id: ObjectId
  websiteId: ObjectId
  profileId: ObjectId
  erasedAt: Date
}

export interface ProfileCollections {
  profiles: Collection<ProfileDocument>
  visitorLinks: Collection<VisitorLinkDocument>
  erasedIncarnations: Collection<ErasedIncarnationDocument>
}

export function profileCollections (db: Db): ProfileCollections {
  return {
    profiles: db.collection<ProfileDocument>('profiles'),
    visitorLinks: db.collection<VisitorLinkDocument>('visitorLinks'),
    erasedIncarnations: db.collection<ErasedIncarnationDocument>('erasedIncarnations')
  }
}

/** No index for one profile per (website, user_id): the `_id` is derived from the pair. */
export async function ensureProfileIndexes ({ profiles, visitorLinks, erasedIncarnations }: ProfileCollections): Promise<void> {
  await visitorLinks.createIndex({ profileId: 1 }, { name: 'profileId' }, undefined)
  // Listing and exporting walk one website's profiles in `_id` order.
  await profiles.createIndex({ websiteId: 1, _id: 1 }, { name: 'websiteId_id' }, undefined)
  await erasedIncarnations.createIndex({ profileId: 1 }, { name: 'profileId' }, undefined)
}

/** Tries of a write that loses races with other writes of its profile, then a `contended` DomainError. */
export const MAX_ATTEMPTS = 10

export const backOff = async (attempt: number): Promise<void> => { await sleep(Math.random() * 2 * attempt) }
