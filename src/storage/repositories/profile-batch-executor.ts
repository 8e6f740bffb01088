import { MongoBulkWriteError, type AnyBulkWriteOperation, type Collection, type Document, type Filter, type ObjectId, type OptionalUnlessRequiredId, type WriteError } from 'mongodb'
import { DomainError } from '../../domain/errors.js'
import type { IdentifyInput } from '../../domain/identify.js'
import type { Metadata, ProfileLimits } from '../../domain/metadata.js'
import { DUPLICATE_KEY, retryOnDuplicateKey } from '../mongo-errors.js'
import { planBatch, type BatchEntryResult, type BatchWrites, type LinkMove } from './profile-batch.js'
import {
  inIdOrder,
  linkLeft,
  profileDocument,
  profileIdFor,
  visitorLinkDocument,
  visitorLinkIdFor,
  VISITOR_LEFT,
  type ProfileDocument,
  type VisitorLinkDocument
} from './profile-documents.js'
import type { ProfileCollections } from './profile-store.js'
import { upsertProfile } from './profile-upsert.js'

/** A link move whose stored state may be gone again (null): then it is made by upsert, one by one. */
type MoveFromStored = Omit<LinkMove, 'from'> & { from: VisitorLinkDocument | null }

/** Entries as upsertProfile would run them one after the other, in bulk (docs/storage.md#the-batch-executor). */
export async function upsertProfiles (collections: ProfileCollections, websiteId: string, entries: IdentifyInput[], limits: ProfileLimits): Promise<BatchEntryResult[]> {
  if (entries.length === 0) return []
  const profileIds = unique(entries.map(({ userId }) => profileIdFor(websiteId, userId)))
  const linkIds = [...new Set(entries.map(({ visitorId }) => visitorLinkIdFor(websiteId, visitorId)))]
  const [profiles, links] = await Promise.all([readByIds(collections.profiles, profileIds), readByIds(collections.visitorLinks, linkIds)])
  const writes = planBatch(websiteId, entries, { profiles, links }, limits, new Date())
  const { consistent, taken } = await writeBatch(collections, writes)
  if (consistent) return writes.results
  return await redoBatch(collections, websiteId, entries, limits, writes.results, taken)
}

/** Sends a batch's writes; not consistent when one found the state changed since the read. `taken`: the new profiles another call created first. */
async function writeBatch (collections: ProfileCollections, writes: BatchWrites): Promise<{ consistent: boolean, taken: Set<string> }> {
  const { profiles, visitorLinks, erasedIncarnations } = collections
  const taken = new Set((await insertUnordered(profiles, writes.inserts)).map(({ _id }) => _id.toHexString()))
  // Links that exist after all (a concurrent call's) move from where they are now.
  const existingLinks = await insertUnordered(visitorLinks, writes.linkInserts)
  const left = new Map(writes.marks.map((_id) => [_id.toHexString(), _id]))
  await moveLinks(collections, [...writes.linkMoves, ...await movesFromStored(collections, existingLinks)], left)
  await bulkUpdate(profiles, inIdOrder(left).map((_id) => ({ updateOne: { filter: { _id }, update: VISITOR_LEFT } })))
  const updated = await bulkUpdate(profiles, writes.profileUpdates)
  let consistent = taken.size === 0 && updated === writes.profileUpdates.length
  if (writes.incarnations.length > 0) {
    consistent &&= await erasedIncarnations.findOne({ _id: { $in: writes.incarnations } }, { projection: { _id: 1 } }) === null
  }
  return { consistent, taken }
}

/** The moves of links found stored when the plan expected none, from their stored state (null once gone again). */
async function movesFromStored ({ visitorLinks }: ProfileCollections, links: VisitorLinkDocument[]): Promise<MoveFromStored[]> {
  if (links.length === 0) return []
  const stored = new Map((await readByIds(visitorLinks, links.map(({ _id }) => _id))).map((from) => [from._id, from]))
  return links.map((link) => ({ from: stored.get(link._id) ?? null, link }))
}

/** Moves links in bulk, each only if still as read, adding the profiles they leave to `left`; the few that changed move one by one. */
async function moveLinks ({ visitorLinks }: ProfileCollections, moves: MoveFromStored[], left: Map<string, ObjectId>): Promise<void> {
  const asRead = inIdOrder(new Map(moves.filter((move): move is LinkMove => move.from !== null).map((move) => [move.link._id, move])))
  const matched = await bulkUpdate(visitorLinks, asRead.map(({ from, link: { _id, ...fields } }) =>
    ({ updateOne: { filter: { _id, profileId: from.profileId, profileIncarnation: from.profileIncarnation }, update: { $set: fields } } })))
  // Every profile read as left is marked, matched or not: a mark only stops trusting a list, so a spare one is harmless.
  for (const { from, link } of asRead) if (linkLeft(from, linkTarget(link))) left.set(from.profileId.toHexString(), from.profileId)
  const strays = moves.filter(({ from }) => from === null).map(({ link }) => link)
  if (matched < asRead.length) {
    const now = new Map((await readByIds(visitorLinks, asRead.map(({ link }) => link._id))).map((stored) => [stored._id, stored]))
    strays.push(...asRead.filter(({ link }) => !isSameLink(now.get(link._id), link)).map(({ link }) => link))
  }
  await Promise.all(strays.map(async ({ _id, ...fields }) => {
    const before = await retryOnDuplicateKey(async () =>
      await visitorLinks.findOneAndUpdate({ _id }, { $set: fields }, { upsert: true, returnDocument: 'before' }))
    if (linkLeft(before, linkTarget(fields))) left.set(before.profileId.toHexString(), before.profileId)
  }))
}

/** The race path: every entry again, in order; an action the bulk writes took is still reported, not a creation another call made first. */
async function redoBatch (
  collections: ProfileCollections, websiteId: string, entries: IdentifyInput[], limits: ProfileLimits, planned: BatchEntryResult[], taken: Set<string>
): Promise<BatchEntryResult[]> {
  const results: BatchEntryResult[] = []
  for (const [index, { userId, visitorId, change }] of entries.entries()) {
    try {
      const redone = await upsertProfile(collections, { websiteId, userId, visitorId, metadata: change.set, setOnce: change.setOnce, unset: change.unset, limits })
      const before = planned[index]
      results.push(before instanceof DomainError || before === undefined
        ? redone
        : { profileId: redone.profileId, created: redone.created || (before.created && !taken.has(before.profileId)), changed: redone.changed || before.changed })
    } catch (error) {
      // An item's own broken rule is its result; contention ends the whole call, which can be sent again.
      if (!(error instanceof DomainError) || error.kind === 'contended') throw error
      results.push(error)
    }
  }
  return results
}

/** Inserts new profiles, each with one visitor, in bulk and in upsertProfile's shapes (seeding, imports); fails on an existing one. */
export async function importProfiles (collections: ProfileCollections, websiteId: string, entries: Array<{ userId: string, visitorId: string, metadata: Metadata }>): Promise<void> {
  if (entries.length === 0) return
  const now = new Date()
  const documents = entries.map(({ userId, visitorId, metadata }) => {
    const profile = profileDocument(websiteId, userId, visitorId, metadata, now)
    return { profile, link: visitorLinkDocument(websiteId, visitorId, profile, now) }
  })
  await collections.profiles.insertMany(documents.map(({ profile }) => profile))
  await collections.visitorLinks.insertMany(documents.map(({ link }) => link))
}

const unique = <T extends { toString: () => string }>(ids: T[]): T[] => [...new Map(ids.map((id) => [id.toString(), id])).values()]

/** Documents by `_id`: one query on the `_id` index, whose first reply holds them all. */
async function readByIds<T extends Document & { _id: unknown }> (collection: Collection<T>, ids: Array<T['_id']>): Promise<T[]> {
  if (ids.length === 0) return []
  return await collection.find({ _id: { $in: ids } } as Filter<T>, { batchSize: ids.length }).toArray() as T[]
}

/** An unordered insert; the documents whose `_id` was taken already, which the others do not wait for. */
async function insertUnordered<T extends Document> (collection: Collection<T>, documents: Array<OptionalUnlessRequiredId<T>>): Promise<Array<OptionalUnlessRequiredId<T>>> {
  if (documents.length === 0) return []
  try {
    await collection.insertMany(documents, { ordered: false })
    return []
  } catch (error) {
    if (!(error instanceof MongoBulkWriteError)) throw error
    const writeErrors = ([] as WriteError[]).concat(error.writeErrors)
    if (!writeErrors.every((writeError) => writeError.code === DUPLICATE_KEY)) throw error
    return writeErrors.map(({ index }) => documents[index] as OptionalUnlessRequiredId<T>)
  }
}

/** One unordered bulk write (the driver splits it at the server's maxWriteBatchSize); how many matched. */
async function bulkUpdate<T extends Document> (collection: Collection<T>, updates: Array<AnyBulkWriteOperation<T>>): Promise<number> {
  if (updates.length === 0) return 0
  return (await collection.bulkWrite(updates, { ordered: false })).matchedCount
}

const isSameLink = (stored: VisitorLinkDocument | undefined, link: VisitorLinkDocument): boolean =>
  stored !== undefined && stored.profileId.equals(link.profileId) && stored.profileIncarnation.equals(link.profileIncarnation)

const linkTarget = (link: Pick<VisitorLinkDocument, 'profileId' | 'profileIncarnation'>): Pick<ProfileDocument, '_id' | 'incarnation'> =>
  ({ _id: link.profileId, incarnation: link.profileIncarnation })
