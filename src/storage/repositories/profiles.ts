import { setTimeout as sleep } from 'node:timers/promises'
import { MongoBulkWriteError, ObjectId, type AnyBulkWriteOperation, type Collection, type Db, type Document, type Filter, type OptionalUnlessRequiredId, type WriteError } from 'mongodb'
import { DomainError } from '../../domain/errors.js'
import type { IdentifyInput } from '../../domain/identify.js'
import { checkProfileLimits, planMerge, type MergePlan, type Metadata, type MetadataChange, type ProfileLimits } from '../../domain/metadata.js'
import type { Profile } from '../../schemas/profiles.js'
import { ContendedError, DUPLICATE_KEY, isDuplicateKey, isWriteConflict, retryOnDuplicateKey } from '../mongo-errors.js'
import { listedMergePipeline } from './profile-merge.js'
import { planBatch, type BatchEntryResult, type BatchWrites, type LinkMove } from './profile-batch.js'
import {
  inIdOrder,
  isLinkTo,
  linkLeft,
  LISTED_VISITORS_MAX,
  listsVisitors,
  metadataChanges,
  profileDocument,
  profileIdFor,
  visitorLinkDocument,
  visitorLinkIdFor,
  VISITOR_LEFT,
  withoutEmpty,
  type ProfileDocument,
  type VisitorLinkDocument
} from './profile-documents.js'

export { LISTED_VISITORS_MAX, profileIdFor } from './profile-documents.js'


export type { Profile }

export interface UpsertProfileInput {
  websiteId: string
  userId: string
  /** Lowercase UUID. */
  visitorId: string
  /** Checked fields to merge, placeholders already dropped. */
  metadata: Metadata
  /** Checked `$set_once` fields (docs/api.md#identify-operators). */
  setOnce?: Metadata
  /** Checked `$unset` names. */
  unset?: readonly string[]
  limits: ProfileLimits
}

const changeOf = (input: UpsertProfileInput): MetadataChange => ({ set: input.metadata, setOnce: input.setOnce ?? {}, unset: input.unset ?? [] })

export interface UpsertProfileResult {
  profileId: string
  created: boolean
  /** A metadata field got a new value, or the visitor was linked to this profile. */
  changed: boolean
}

export interface ProfilePage {
  profiles: Profile[]
  /** The last profile's id when more may follow, else null. */
  nextAfter: string | null
}

/**
 * One per erasure: the incarnation erased, its profile and website ids and
 * when, nothing else about its user. A call that created that incarnation
 * looks it up after linking its visitor, to learn cheaply whether it was
 * erased meanwhile; an erasure cut short is finished from it.
 */
interface ErasedIncarnationDocument {
  _id: ObjectId
  websiteId: ObjectId
  profileId: ObjectId
  erasedAt: Date
}

/** Marks an upgrade of stored documents as done, so that a start checks it with one lookup by `_id`. */
interface SchemaUpgradeDocument {
  _id: string
  doneAt: Date
}

/** Stores written before profiles had incarnations: see upgradeLegacyDocuments. */
const INCARNATIONS_UPGRADE = 'profile-incarnations'

export interface Erasure {
  profileId: string
  /** Visitor links deleted with the profile. */
  visitorLinks: number
}


/** Tries of a write that loses races with other writes of its profile, each after a wait that grows: then a ContendedError. */
const MAX_ATTEMPTS = 10
const backOff = async (attempt: number): Promise<void> => { await sleep(Math.random() * 2 * attempt) }

/**
 * Profiles and visitor links. Concurrency, without transactions (see
 * docs/api.md#profiles-how-visitor-ids-are-kept): each of identify's
 * commands touches one document, and each call orders its writes so that
 * after any interleaving a profile lists exactly the visitors whose links
 * point at it.
 *
 * - A visitor is added to a profile's list only after its link points there,
 *   or, for a new profile, in the insert that precedes the link.
 * - Whoever moves a link away from a profile marks that profile
 *   `visitorIdsInLinks` (for good), so a late or stale list entry is never read.
 * - A call that writes a link ends by checking that the profile's incarnation
 *   was not erased meanwhile (with its last write of the profile, or, for a
 *   new profile, a lookup of the erasure record): if it was, the call runs
 *   again, so it ends either before the erasure (and is erased with it) or
 *   after it (on a new profile), never with a link to an erased profile.
 * - A call of a visitor the profile lists merges in one command, on the
 *   profile that lists it (listedMergePipeline). One whose visitor is known
 *   by its link alone writes a plain update, which lands on whatever profile
 *   has the `_id` by then.
 */
export class ProfilesRepository {
  private readonly profiles
  private readonly visitorLinks
  private readonly erasedIncarnations
  private readonly schemaUpgrades

  constructor (db: Db) {
    this.profiles = db.collection<ProfileDocument>('profiles')
    this.visitorLinks = db.collection<VisitorLinkDocument>('visitorLinks')
    this.erasedIncarnations = db.collection<ErasedIncarnationDocument>('erasedIncarnations')
    this.schemaUpgrades = db.collection<SchemaUpgradeDocument>('schemaUpgrades')
  }

  /** One profile per (website, user_id) needs no index: the `_id` is derived from the pair. */
  async ensureIndexes (): Promise<void> {
    await this.visitorLinks.createIndex({ profileId: 1 }, { name: 'profileId' }, undefined)
    // Listing and exporting walk one website's profiles in `_id` order.
    await this.profiles.createIndex({ websiteId: 1, _id: 1 }, { name: 'websiteId_id' }, undefined)
    await this.erasedIncarnations.createIndex({ profileId: 1 }, { name: 'profileId' }, undefined)
    await this.upgradeLegacyDocuments()
  }

  /**
   * Gives the profiles and links of an earlier version (no incarnation, no
   * visitor list) the shape this one reads: each profile's own `_id` as its
   * incarnation (unique, and never equal to a new random one), its visitors
   * read from its links. Runs once per database, before the first request:
   * one update pipeline per collection, which copies a field of each
   * document into another; cut short, it resumes at the next start.
   */
  async upgradeLegacyDocuments (): Promise<{ profiles: number, visitorLinks: number }> {
    if (await this.schemaUpgrades.findOne({ _id: INCARNATIONS_UPGRADE }) !== null) return { profiles: 0, visitorLinks: 0 }
    const profiles = await this.profiles.updateMany({ incarnation: { $exists: false } }, [{ $set: { incarnation: '$_id', visitorIdsInLinks: true } }])
    const visitorLinks = await this.visitorLinks.updateMany({ profileIncarnation: { $exists: false } }, [{ $set: { profileIncarnation: '$profileId' } }])
    await this.schemaUpgrades.updateOne({ _id: INCARNATIONS_UPGRADE }, { $set: { doneAt: new Date() } }, { upsert: true })
    return { profiles: profiles.modifiedCount, visitorLinks: visitorLinks.modifiedCount }
  }

  /**
   * Creates or merges the profile of (website, user_id) and links the visitor
   * to it. Limits are checked before anything is written and an unchanged
   * call writes nothing; every write sets all the fields the call sent, so
   * concurrent calls end in the state of some serial order.
   */
  async upsertProfile (input: UpsertProfileInput): Promise<UpsertProfileResult> {
    const _id = profileIdFor(input.websiteId, input.userId)
    for (let attempt = 1; ; attempt++) {
      const result = await this.attemptUpsert(input, _id)
      if (result !== null) return result
      // Another call created the profile first, or an erasure removed it: read again and redo the call.
      if (attempt >= MAX_ATTEMPTS) throw new ContendedError('identify raced with creations or erasures of its profile too many times')
      await backOff(attempt)
    }
  }

  /**
   * One try; null when the profile changed under it and the call must run
   * again. It starts with the merge of a visitor the profile lists, decided
   * by the database (listedMergePipeline), which also reads the profile: the
   * whole of the common call in one command.
   */
  private async attemptUpsert (input: UpsertProfileInput, _id: ObjectId): Promise<UpsertProfileResult | null> {
    const now = new Date()
    const changeId = new ObjectId()
    const profile = await this.profiles.findOneAndUpdate({ _id }, listedMergePipeline({ ...input, change: changeOf(input), changeId, now }), { returnDocument: 'after' })
    if (profile === null) return await this.createProfile(input, now)

    if (profile.userId !== input.userId || !profile.websiteId.equals(input.websiteId)) {
      throw new Error('profile id collision: two (website, user_id) pairs derived the same _id')
    }
    if (profile.changeId?.equals(changeId) === true) return { profileId: _id.toHexString(), created: false, changed: true }
    // Not merged: nothing to change, a limit (planMerge names it), or a visitor the profile does not list.
    const plan = planMerge(profile.metadata, changeOf(input), input.limits)
    const listed = listsVisitors(profile) ? profile.visitorIds.includes(input.visitorId) : null
    // A listed visitor is linked here: whoever moves its link away unlists it, in a write that ends that call.
    if (listed === true && !plan.changed) return { profileId: _id.toHexString(), created: false, changed: false }
    // Once the list is given up, the visitor's link is the truth.
    if (listed !== false && isLinkTo(await this.visitorLinks.findOne({ _id: visitorLinkIdFor(input.websiteId, input.visitorId) }), profile)) {
      if (plan.changed) await this.profiles.updateOne({ _id }, withoutEmpty(metadataChanges(plan, now)))
      return { profileId: _id.toHexString(), created: false, changed: plan.changed }
    }
    await this.linkVisitor(input, profile, now)
    return await this.listVisitor(profile, input, plan, now)
  }

  /**
   * Inserts the profile listing the visitor, links the visitor, then checks
   * that this incarnation was not erased meanwhile (a lookup of a record that
   * almost never exists, cheaper than reading the profile back).
   */
  private async createProfile (input: UpsertProfileInput, now: Date): Promise<UpsertProfileResult | null> {
    const metadata = checkProfileLimits(changeOf(input), input.limits)
    const profile = profileDocument(input.websiteId, input.userId, input.visitorId, metadata, now)
    try {
      await this.profiles.insertOne(profile)
    } catch (error) {
      if (isDuplicateKey(error)) return null
      throw error
    }
    await this.linkVisitor(input, profile, now)
    if (await this.erasedIncarnations.findOne({ _id: profile.incarnation }) !== null) return null
    return { profileId: profile._id.toHexString(), created: true, changed: true }
  }

  /**
   * Lists the visitor (or gives the list up when full) and merges the
   * metadata, in one write of the incarnation read, so that an erasure since
   * the read is seen: then null, and the call runs again.
   */
  private async listVisitor (profile: ProfileDocument, input: UpsertProfileInput, plan: MergePlan, now: Date): Promise<UpsertProfileResult | null> {
    const { $set, $unset } = plan.changed ? metadataChanges(plan, now) : { $set: {}, $unset: {} }
    const $addToSet: Record<string, string> = {}
    if (listsVisitors(profile) && profile.visitorIds.length < LISTED_VISITORS_MAX) {
      $addToSet.visitorIds = input.visitorId
    } else {
      // A full list is given up; one already given up is marked again, so that there is always a write that returns the profile.
      Object.assign($set, VISITOR_LEFT.$set)
      if (listsVisitors(profile)) Object.assign($unset, VISITOR_LEFT.$unset)
    }
    // Only the incarnation read: a list never names a visitor whose link points at another.
    const { matchedCount } = await this.profiles.updateOne({ _id: profile._id, incarnation: profile.incarnation }, withoutEmpty({ $set, $unset, $addToSet }))
    if (matchedCount === 0) return null
    return { profileId: profile._id.toHexString(), created: false, changed: true }
  }

  /** Points the visitor at this profile; the profile it leaves, if any, stops trusting its list. */
  private async linkVisitor (input: UpsertProfileInput, profile: ProfileDocument, now: Date): Promise<void> {
    const { _id, ...fields } = visitorLinkDocument(input.websiteId, input.visitorId, profile, now)
    const before = await retryOnDuplicateKey(async () =>
      await this.visitorLinks.findOneAndUpdate({ _id }, { $set: fields }, { upsert: true, returnDocument: 'before' }))
    if (linkLeft(before, profile)) await this.profiles.updateOne({ _id: before.profileId }, VISITOR_LEFT)
  }

  /**
   * Identifies many entries of one website as upsertProfile would one after
   * the other, in bulk (docs/api.md#batch-identify-how-it-is-stored): reads
   * their profiles and links (one `$in` per collection), plans every entry in
   * memory, then writes in the single path's order: new profiles (listing
   * their visitors), new links, moved links (each only from where it was
   * read), the profiles visitors left, the updated profiles, and a lookup of
   * erasure records of every incarnation written. When a write finds the
   * state changed since the read (a concurrent creation or erasure), every
   * entry runs again through upsertProfile in order; the writes already done
   * are among them, so this converges.
   */
  async upsertProfiles (websiteId: string, entries: IdentifyInput[], limits: ProfileLimits): Promise<BatchEntryResult[]> {
    if (entries.length === 0) return []
    const profileIds = unique(entries.map(({ userId }) => profileIdFor(websiteId, userId)))
    const linkIds = [...new Set(entries.map(({ visitorId }) => visitorLinkIdFor(websiteId, visitorId)))]
    const [profiles, links] = await Promise.all([readByIds(this.profiles, profileIds), readByIds(this.visitorLinks, linkIds)])
    const writes = planBatch(websiteId, entries, { profiles, links }, limits, new Date())
    const { consistent, taken } = await this.writeBatch(writes)
    if (consistent) return writes.results
    return await this.redoBatch(websiteId, entries, limits, writes.results, taken)
  }

  /** Sends a batch's writes; not consistent when one found the state changed since the read. `taken`: the new profiles another call created first. */
  private async writeBatch (writes: BatchWrites): Promise<{ consistent: boolean, taken: Set<string> }> {
    const taken = new Set((await insertUnordered(this.profiles, writes.inserts)).map(({ _id }) => _id.toHexString()))
    // Links that exist after all (a concurrent call's) move from where they are now.
    const existingLinks = await insertUnordered(this.visitorLinks, writes.linkInserts)
    const left = new Map(writes.marks.map((_id) => [_id.toHexString(), _id]))
    await this.moveLinks([...writes.linkMoves, ...await this.movesFromStored(existingLinks)], left)
    await bulkUpdate(this.profiles, inIdOrder(left).map((_id) => ({ updateOne: { filter: { _id }, update: VISITOR_LEFT } })))
    const updated = await bulkUpdate(this.profiles, writes.profileUpdates)
    let consistent = taken.size === 0 && updated === writes.profileUpdates.length
    if (writes.incarnations.length > 0) {
      consistent &&= await this.erasedIncarnations.findOne({ _id: { $in: writes.incarnations } }, { projection: { _id: 1 } }) === null
    }
    return { consistent, taken }
  }

  /** The moves of links found stored when the plan expected none, from their stored state (null once gone again). */
  private async movesFromStored (links: VisitorLinkDocument[]): Promise<MoveFromStored[]> {
    if (links.length === 0) return []
    const stored = new Map((await readByIds(this.visitorLinks, links.map(({ _id }) => _id))).map((from) => [from._id, from]))
    return links.map((link) => ({ from: stored.get(link._id) ?? null, link }))
  }

  /**
   * Moves links in bulk, each only if it is still as read, and adds the
   * profiles they leave to `left`. The few that changed meanwhile move one by
   * one as linkVisitor moves them, by a findOneAndUpdate that tells which
   * profile each one leaves.
   */
  private async moveLinks (moves: MoveFromStored[], left: Map<string, ObjectId>): Promise<void> {
    const asRead = inIdOrder(new Map(moves.filter((move): move is LinkMove => move.from !== null).map((move) => [move.link._id, move])))
    const matched = await bulkUpdate(this.visitorLinks, asRead.map(({ from, link: { _id, ...fields } }) =>
      ({ updateOne: { filter: { _id, profileId: from.profileId, profileIncarnation: from.profileIncarnation }, update: { $set: fields } } })))
    // Every profile read as left is marked, matched or not: a mark only stops trusting a list, so a spare one is harmless.
    for (const { from, link } of asRead) if (linkLeft(from, linkTarget(link))) left.set(from.profileId.toHexString(), from.profileId)
    const strays = moves.filter(({ from }) => from === null).map(({ link }) => link)
    if (matched < asRead.length) {
      const now = new Map((await readByIds(this.visitorLinks, asRead.map(({ link }) => link._id))).map((stored) => [stored._id, stored]))
      strays.push(...asRead.filter(({ link }) => !isSameLink(now.get(link._id), link)).map(({ link }) => link))
    }
    await Promise.all(strays.map(async ({ _id, ...fields }) => {
      const before = await retryOnDuplicateKey(async () =>
        await this.visitorLinks.findOneAndUpdate({ _id }, { $set: fields }, { upsert: true, returnDocument: 'before' }))
      if (linkLeft(before, linkTarget(fields))) left.set(before.profileId.toHexString(), before.profileId)
    }))
  }

  /**
   * The race path: every entry again, one by one in order. An action the bulk
   * writes already took is still reported, but not the creation of a profile
   * another call created first.
   */
  private async redoBatch (websiteId: string, entries: IdentifyInput[], limits: ProfileLimits, planned: BatchEntryResult[], taken: Set<string>): Promise<BatchEntryResult[]> {
    const results: BatchEntryResult[] = []
    for (const [index, { userId, visitorId, change }] of entries.entries()) {
      try {
        const redone = await this.upsertProfile({ websiteId, userId, visitorId, metadata: change.set, setOnce: change.setOnce, unset: change.unset, limits })
        const before = planned[index]
        results.push(before instanceof DomainError || before === undefined
          ? redone
          : { profileId: redone.profileId, created: redone.created || (before.created && !taken.has(before.profileId)), changed: redone.changed || before.changed })
      } catch (error) {
        if (!(error instanceof DomainError)) throw error
        results.push(error)
      }
    }
    return results
  }

  /**
   * Inserts new profiles, each with one visitor, in bulk and in the very shapes
   * upsertProfile writes (benchmark seeding, imports). Fails on an existing one.
   */
  async importProfiles (websiteId: string, entries: Array<{ userId: string, visitorId: string, metadata: Metadata }>): Promise<void> {
    if (entries.length === 0) return
    const now = new Date()
    const documents = entries.map(({ userId, visitorId, metadata }) => {
      const profile = profileDocument(websiteId, userId, visitorId, metadata, now)
      return { profile, link: visitorLinkDocument(websiteId, visitorId, profile, now) }
    })
    await this.profiles.insertMany(documents.map(({ profile }) => profile))
    await this.visitorLinks.insertMany(documents.map(({ link }) => link))
  }

  async findProfile (websiteId: string, userId: string): Promise<Profile | null> {
    const document = await this.findProfileDocument(websiteId, profileIdFor(websiteId, userId))
    return document === null || document.userId !== userId ? null : await this.toProfile(document)
  }

  async findProfileById (websiteId: string, profileId: string): Promise<Profile | null> {
    const document = await this.findProfileDocument(websiteId, new ObjectId(profileId))
    return document === null ? null : await this.toProfile(document)
  }

  /** The profile the visitor's link points at, or null when it is linked to none. */
  async findVisitorProfile (websiteId: string, visitorId: string): Promise<Profile | null> {
    const link = await this.visitorLinks.findOne({ _id: visitorLinkIdFor(websiteId, visitorId) })
    if (link === null) return null
    const document = await this.findProfileDocument(websiteId, link.profileId)
    return document === null || !isLinkTo(link, document) ? null : await this.toProfile(document)
  }

  /** One page of a website's profiles in `_id` order, after the given id (keyset pagination). */
  async listProfiles (websiteId: string, options: { after: string | null, limit: number }): Promise<ProfilePage> {
    const filter: Filter<ProfileDocument> = { websiteId: new ObjectId(websiteId) }
    if (options.after !== null) filter._id = { $gt: new ObjectId(options.after) }
    const documents = await this.profiles.find(filter, { sort: { _id: 1 }, limit: options.limit + 1 }).toArray()
    const page = documents.slice(0, options.limit)
    return {
      profiles: await this.toProfiles(page),
      nextAfter: documents.length > options.limit ? page.at(-1)?._id.toHexString() ?? null : null
    }
  }

  /**
   * Every profile of a website in `_id` order (the websiteId_id index),
   * through one cursor, a batch at a time: memory stays flat whatever the
   * number of profiles.
   */
  async * exportProfiles (websiteId: string, batchSize = 1000): AsyncGenerator<Profile> {
    const cursor = this.profiles.find({ websiteId: new ObjectId(websiteId) }, { sort: { _id: 1 }, batchSize })
    try {
      let batch: ProfileDocument[] = []
      for await (const document of cursor) {
        batch.push(document)
        if (batch.length < batchSize) continue
        yield * await this.toProfiles(batch)
        batch = []
      }
      yield * await this.toProfiles(batch)
    } finally {
      await cursor.close()
    }
  }

  /**
   * Deletes the profile and every visitor link to it, however many links
   * (docs/api.md#profiles-erasure). The erasure is recorded first, so that a
   * call that created this incarnation and linked a visitor after the links
   * were deleted sees the record and links again, and so that an erasure cut
   * short after the delete (a 503) is finished by the next one, which finds
   * the profile gone and deletes the links its records name. Null when the
   * website has no such profile, and only once it and its links are gone.
   */
  async eraseProfile (websiteId: string, profileId: string): Promise<Erasure | null> {
    const _id = new ObjectId(profileId)
    const profile = await this.findProfileDocument(websiteId, _id)
    const erased = profile === null ? null : await this.deleteProfile(profile)
    if (erased === null) {
      await this.deleteLinksOfErased(websiteId, _id)
      return null
    }
    return { profileId, visitorLinks: await this.deleteLinks(_id, [erased.incarnation]) }
  }

  /**
   * Records the erasure of the incarnation read, then deletes it. When that
   * matched nothing, reads the profile again: gone (null), or still there or
   * created again (then recorded too), and deleted again.
   */
  private async deleteProfile (read: ProfileDocument): Promise<ProfileDocument | null> {
    let current: ProfileDocument | null = read
    await this.recordErasure(read)
    for (let attempt = 1; current !== null; attempt++) {
      // deleteMany, which DocumentDB checks again after waiting for a racing update, where its deleteOne can match nothing while the document stays.
      const { deletedCount } = await this.profiles.deleteMany({ _id: current._id, incarnation: current.incarnation })
      if (deletedCount > 0) return current
      if (attempt >= MAX_ATTEMPTS) throw new ContendedError('erasure raced with updates of its profile too many times')
      await backOff(attempt)
      const stays: ProfileDocument | null = await this.profiles.findOne({ _id: read._id })
      if (stays !== null && !stays.incarnation.equals(current.incarnation)) await this.recordErasure(stays)
      current = stays
    }
    return null
  }

  private async recordErasure (profile: ProfileDocument): Promise<void> {
    try {
      await this.erasedIncarnations.insertOne({ _id: profile.incarnation, websiteId: profile.websiteId, profileId: profile._id, erasedAt: new Date() })
    } catch (error) {
      // Another erasure of this incarnation, or an earlier try of this one, recorded it first.
      if (!isDuplicateKey(error)) throw error
    }
  }

  /** The links left by erasures of this profile id that were cut short (or that another erasure is deleting); none in the usual case. */
  private async deleteLinksOfErased (websiteId: string, profileId: ObjectId): Promise<void> {
    const erased = await this.erasedIncarnations.find({ profileId, websiteId: new ObjectId(websiteId) }).toArray()
    if (erased.length > 0) await this.deleteLinks(profileId, erased.map(({ _id }) => _id))
  }

  /**
   * Deletes the links to these incarnations of the profile and how many,
   * then confirms that none is left: a call still under way can write one
   * after the deleteMany passed (it then sees the erasure record and links
   * again), and an erasure must not answer while one remains.
   */
  private async deleteLinks (profileId: ObjectId, incarnations: ObjectId[]): Promise<number> {
    const filter = { profileId, profileIncarnation: { $in: incarnations } }
    let deleted = 0
    for (let attempt = 1; ; attempt++) {
      try {
        deleted += (await this.visitorLinks.deleteMany(filter)).deletedCount
      } catch (error) {
        // Lost a deadlock with a batch that writes these links (DocumentDB): the check below sends it again.
        if (!isWriteConflict(error) || attempt >= MAX_ATTEMPTS) throw error
      }
      if (await this.visitorLinks.findOne(filter, { projection: { _id: 1 } }) === null) return deleted
      if (attempt >= MAX_ATTEMPTS) throw new ContendedError('erasure raced with links to its profile too many times')
      await backOff(attempt)
    }
  }

  private async findProfileDocument (websiteId: string, _id: ObjectId): Promise<ProfileDocument | null> {
    const document = await this.profiles.findOne({ _id })
    return document?.websiteId.equals(websiteId) === true ? document : null
  }

  private async toProfile (document: ProfileDocument): Promise<Profile> {
    return shownProfile(document, await this.linkedVisitors([document]))
  }

  private async toProfiles (documents: ProfileDocument[]): Promise<Profile[]> {
    const linked = await this.linkedVisitors(documents)
    return documents.map((document) => shownProfile(document, linked))
  }

  /** The visitors of the profiles that no longer list them, from their links, in one query; keyed by linkKey. */
  private async linkedVisitors (documents: ProfileDocument[]): Promise<Map<string, string[]>> {
    const linked = new Map<string, string[]>()
    const profileIds = documents.filter((document) => !listsVisitors(document)).map((document) => document._id)
    if (profileIds.length === 0) return linked
    const links = this.visitorLinks.find({ profileId: { $in: profileIds } }, { sort: { linkedAt: 1, _id: 1 } })
    for await (const link of links) {
      const key = linkKey(link.profileId, link.profileIncarnation)
      linked.set(key, [...linked.get(key) ?? [], link.visitorId])
    }
    return linked
  }
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

/** A link move whose stored state may be gone again (null): then it is made by upsert, one by one. */
type MoveFromStored = Omit<LinkMove, 'from'> & { from: VisitorLinkDocument | null }

const isSameLink = (stored: VisitorLinkDocument | undefined, link: VisitorLinkDocument): boolean =>
  stored !== undefined && stored.profileId.equals(link.profileId) && stored.profileIncarnation.equals(link.profileIncarnation)

const linkTarget = (link: Pick<VisitorLinkDocument, 'profileId' | 'profileIncarnation'>): Pick<ProfileDocument, '_id' | 'incarnation'> =>
  ({ _id: link.profileId, incarnation: link.profileIncarnation })

const linkKey = (profileId: ObjectId, incarnation: ObjectId): string => `${profileId.toHexString()}:${incarnation.toHexString()}`

/** The profile as the API shows it (P in docs/api.md), from its document and, when that no longer lists its visitors, from its links. */
function shownProfile (document: ProfileDocument, linked: Map<string, string[]>): Profile {
  return {
    id: document._id.toHexString(),
    websiteId: document.websiteId.toHexString(),
    userId: document.userId,
    metadata: document.metadata,
    visitorIds: listsVisitors(document) ? [...document.visitorIds] : linked.get(linkKey(document._id, document.incarnation)) ?? [],
    createdAt: document.createdAt,
    updatedAt: document.updatedAt
  }
}
