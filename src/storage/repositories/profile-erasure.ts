import { ObjectId } from 'mongodb'
import { contended } from '../../domain/errors.js'
import type { Erasure } from '../../domain/profile-reads.js'
import { isDuplicateKey, isWriteConflict } from '../mongo-errors.js'
import type { ProfileDocument } from './profile-documents.js'
import { findProfileDocument } from './profile-reads.js'
import { backOff, MAX_ATTEMPTS, type ProfileCollections } from './profile-store.js'

/** Null when the website has no such profile; answers only once it and its links are gone (docs/storage.md#erasure). */
export async function eraseProfile (collections: ProfileCollections, websiteId: string, profileId: string): Promise<Erasure | null> {
  const _id = new ObjectId(profileId)
  const profile = await findProfileDocument(collections, websiteId, _id)
  const erased = profile === null ? null : await deleteProfile(collections, profile)
  if (erased === null) {
    await deleteLinksOfErased(collections, websiteId, _id)
    return null
  }
  return { profileId, visitorLinks: await deleteLinks(collections, _id, [erased.incarnation]) }
}

async function deleteProfile (collections: ProfileCollections, read: ProfileDocument): Promise<ProfileDocument | null> {
  let current: ProfileDocument | null = read
  await recordErasure(collections, read)
  for (let attempt = 1; current !== null; attempt++) {
    // deleteMany, which DocumentDB checks again after waiting for a racing update, where its deleteOne can match nothing while the document stays.
    const { deletedCount } = await collections.profiles.deleteMany({ _id: current._id, incarnation: current.incarnation })
    if (deletedCount > 0) return current
    if (attempt >= MAX_ATTEMPTS) throw contended()
    await backOff(attempt)
    const stays: ProfileDocument | null = await collections.profiles.findOne({ _id: read._id })
    if (stays !== null && !stays.incarnation.equals(current.incarnation)) await recordErasure(collections, stays)
    current = stays
  }
  return null
}

async function recordErasure ({ erasedIncarnations }: ProfileCollections, profile: ProfileDocument): Promise<void> {
  try {
    await erasedIncarnations.insertOne({ _id: profile.incarnation, websiteId: profile.websiteId, profileId: profile._id, erasedAt: new Date() })
  } catch (error) {
    // Another erasure of this incarnation, or an earlier try of this one, recorded it first.
    if (!isDuplicateKey(error)) throw error
  }
}

/** The links left by erasures of this profile id that were cut short (or that another erasure is deleting); none in the usual case. */
async function deleteLinksOfErased (collections: ProfileCollections, websiteId: string, profileId: ObjectId): Promise<void> {
  const erased = await collections.erasedIncarnations.find({ profileId, websiteId: new ObjectId(websiteId) }).toArray()
  if (erased.length > 0) await deleteLinks(collections, profileId, erased.map(({ _id }) => _id))
}

/** Deletes the links to these incarnations and confirms none is left, since a call under way can still write one. */
async function deleteLinks ({ visitorLinks }: ProfileCollections, profileId: ObjectId, incarnations: ObjectId[]): Promise<number> {
  const filter = { profileId, profileIncarnation: { $in: incarnations } }
  let deleted = 0
  for (let attempt = 1; ; attempt++) {
    try {
      deleted += (await visitorLinks.deleteMany(filter)).deletedCount
    } catch (error) {
      // Lost a deadlock with a batch that writes these links (DocumentDB): the check below sends it again.
      if (!isWriteConflict(error) || attempt >= MAX_ATTEMPTS) throw error
    }
    if (await visitorLinks.findOne(filter, { projection: { _id: 1 } }) === null) return deleted
    if (attempt >= MAX_ATTEMPTS) throw contended()
    await backOff(attempt)
  }
}
