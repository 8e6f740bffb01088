import { createHash } from 'node:crypto'
import { ObjectId, type Db, type Filter, type UpdateFilter } from 'mongodb'
import { checkProfileLimits, planMerge, type Metadata, type ProfileLimits } from '../domain/metadata.js'
import type { Profile } from '../schemas/profiles.js'
import { isDuplicateKey, retryOnDuplicateKey } from './mongo-errors.js'

/**
 * How many visitors a profile document lists itself. Reading a profile is
 * then one lookup by `_id`, and the document stays small: past this many, or
 * once any visitor has left it, its links alone list its visitors.
 */
export const LISTED_VISITORS_MAX = 16

interface ProfileDocument {
  /** Derived from (website, user_id): see profileIdFor. */
  _id: ObjectId
  websiteId: ObjectId
  userId: string
  metadata: Metadata
  createdAt: Date
  /** When the metadata last changed. */
  updatedAt: Date
  /**
   * New for each profile created: a profile erased and created again for the
   * same user keeps its `_id`, and a link to the erased one must not count
   * for the new one.
   */
  incarnation: ObjectId
  /** The visitors linked to this profile, in the order they were linked, while `visitorIdsInLinks` is unset. */
  visitorIds?: string[]
  /** Set for good once a visitor left the profile or it listed LISTED_VISITORS_MAX: only its links say who is linked. */
  visitorIdsInLinks?: true
}

/**
 * One document per (website, visitor), so a visitor is on at most one profile
 * per website: the `_id` makes the pair unique. The link is the truth about
 * which profile a visitor is on; a profile's visitorIds is a copy of it.
 */
interface VisitorLinkDocument {
  _id: string
  websiteId: ObjectId
  visitorId: string
  profileId: ObjectId
  /** The incarnation of the profile linked to. */
  profileIncarnation: ObjectId
  linkedAt: Date
}

export type { Profile }

export interface UpsertProfileInput {
  websiteId: string
  userId: string
  /** Lowercase UUID. */
  visitorId: string
  /** Checked fields to merge, placeholders already dropped. */
  metadata: Metadata
  limits: ProfileLimits
}

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

const UPGRADE_BATCH = 1000

export interface Erasure {
  profileId: string
  /** Visitor links deleted with the profile. */
  visitorLinks: number
}

/**
 * The profile's `_id` is the first 12 bytes of SHA-256(website, user_id): the
 * database enforces one profile per pair through `_id` alone, and every hot
 * lookup is by `_id`, which both MongoDB and the stand-in answer directly.
 * 96 bits make a collision between two users of one website practically
 * impossible; upsertProfile still refuses to merge into a document whose
 * stored (website, user_id) differs.
 */
export function profileIdFor (websiteId: string, userId: string): ObjectId {
  const digest = createHash('sha256').update(websiteId).update('\0').update(userId).digest()
  return new ObjectId(digest.subarray(0, 12))
}

function visitorLinkIdFor (websiteId: string, visitorId: string): string {
  return `${websiteId}:${visitorId}`
}

/** A new profile listing its first visitor, as upsertProfile creates it; importProfiles writes the same shape. */
function profileDocument (websiteId: string, userId: string, visitorId: string, metadata: Metadata, now: Date): ProfileDocument {
  return {
    _id: profileIdFor(websiteId, userId),
    websiteId: new ObjectId(websiteId),
    userId,
    metadata,
    createdAt: now,
    updatedAt: now,
    incarnation: new ObjectId(),
    visitorIds: [visitorId]
  }
}

function visitorLinkDocument (websiteId: string, visitorId: string, profile: Pick<ProfileDocument, '_id' | 'incarnation'>, now: Date): VisitorLinkDocument {
  return {
    _id: visitorLinkIdFor(websiteId, visitorId),
    websiteId: new ObjectId(websiteId),
    visitorId,
    profileId: profile._id,
    profileIncarnation: profile.incarnation,
    linkedAt: now
  }
}

/** The $set of a merge: each field sent, and the time. */
function metadataChanges (metadata: Metadata, now: Date): Record<string, unknown> {
  const set: Record<string, unknown> = { updatedAt: now }
  for (const [name, value] of Object.entries(metadata)) set[`metadata.${name}`] = value
  return set
}

const listsVisitors = (profile: ProfileDocument): profile is ProfileDocument & { visitorIds: string[] } =>
  profile.visitorIdsInLinks !== true && Array.isArray(profile.visitorIds)

const isLinkTo = (link: VisitorLinkDocument | null, profile: ProfileDocument): boolean =>
  link !== null && link.profileId.equals(profile._id) && link.profileIncarnation.equals(profile.incarnation)

/** What a profile gets when a visitor leaves it: from then on, its links list its visitors. */
const VISITOR_LEFT: UpdateFilter<ProfileDocument> = { $set: { visitorIdsInLinks: true }, $unset: { visitorIds: '' } }

const MAX_ATTEMPTS = 5

/**
 * Profiles and visitor links. Concurrency, without transactions (see
 * docs/api.md#profiles-how-visitor-ids-are-kept): every command touches one
 * document, and each call orders its writes so that after any interleaving a
 * profile lists exactly the visitors whose links point at it.
 *
 * - A visitor is added to a profile's list only after its link points there,
 *   or, for a new profile, in the insert that precedes the link.
 * - Whoever moves a link away from a profile marks that profile
 *   `visitorIdsInLinks` (for good), so a late or stale list entry is never read.
 * - A call that writes a link ends by checking that the profile's incarnation
 *   was not erased meanwhile (with its last write of the profile, or, for a
 *   new profile, a lookup of the erasure record): if it was, the call runs
 *   again, so it ends either before the erasure (and is erased with it) or
 *   after it (on a new profile), never with a link to an erased profile. A
 *   call that only merges metadata into a profile its visitor is linked to
 *   writes it with a plain update, which lands on whatever profile has the
 *   `_id` by then.
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
    // Listing and exporting walk one website's profiles in `_id` order (MongoDB; the stand-in scans either way).
    await this.profiles.createIndex({ websiteId: 1, _id: 1 }, { name: 'websiteId_id' }, undefined)
    await this.erasedIncarnations.createIndex({ profileId: 1 }, { name: 'profileId' }, undefined)
    await this.upgradeLegacyDocuments()
  }

  /**
   * Gives the profiles and links of an earlier version (no incarnation, no
   * visitor list) the shape this one reads: each profile's own `_id` as its
   * incarnation (unique, and never equal to a new random one), its visitors
   * read from its links. Runs once per database, before the first request;
   * cut short, it resumes at the next start. Per document by `_id`, in bulk,
   * because the stand-in cannot update with a pipeline.
   */
  async upgradeLegacyDocuments (): Promise<{ profiles: number, visitorLinks: number }> {
    const upgraded = { profiles: 0, visitorLinks: 0 }
    if (await this.schemaUpgrades.findOne({ _id: INCARNATIONS_UPGRADE }) !== null) return upgraded
    upgraded.profiles = await upgradeEach(this.profiles.find({ incarnation: { $exists: false } }), (profile) =>
      this.profiles.bulkWrite(profile.map(({ _id }) => ({ updateOne: { filter: { _id }, update: { $set: { incarnation: _id, visitorIdsInLinks: true } } } })), { ordered: false }))
    upgraded.visitorLinks = await upgradeEach(this.visitorLinks.find({ profileIncarnation: { $exists: false } }), (links) =>
      this.visitorLinks.bulkWrite(links.map(({ _id, profileId }) => ({ updateOne: { filter: { _id }, update: { $set: { profileIncarnation: profileId } } } })), { ordered: false }))
    await this.schemaUpgrades.updateOne({ _id: INCARNATIONS_UPGRADE }, { $set: { doneAt: new Date() } }, { upsert: true })
    return upgraded
  }

  /**
   * Creates or merges the profile of (website, user_id) and links the visitor
   * to it. Reads first, so that limits are checked before anything is written
   * and an unchanged call writes nothing; every write sets all the fields the
   * call sent, so concurrent calls end in the state of some serial order.
   */
  async upsertProfile (input: UpsertProfileInput): Promise<UpsertProfileResult> {
    const _id = profileIdFor(input.websiteId, input.userId)
    for (let attempt = 1; ; attempt++) {
      const result = await this.attemptUpsert(input, _id)
      if (result !== null) return result
      // Another call created the profile first, or an erasure removed it: read again and redo the call.
      if (attempt >= MAX_ATTEMPTS) throw new Error('identify raced with creations or erasures of its profile too many times')
    }
  }

  /** One try; null when the profile changed under it and the call must run again. */
  private async attemptUpsert (input: UpsertProfileInput, _id: ObjectId): Promise<UpsertProfileResult | null> {
    const profile = await this.profiles.findOne({ _id })
    const now = new Date()
    if (profile === null) return await this.createProfile(input, now)

    if (profile.userId !== input.userId || !profile.websiteId.equals(input.websiteId)) {
      throw new Error('profile id collision: two (website, user_id) pairs derived the same _id')
    }
    const { changed } = planMerge(profile.metadata, input.metadata, input.limits)
    const listed = listsVisitors(profile) ? profile.visitorIds.includes(input.visitorId) : null
    // A listed visitor (or any, once the list is given up) is checked against its link, the truth.
    if (listed !== false && isLinkTo(await this.visitorLinks.findOne({ _id: visitorLinkIdFor(input.websiteId, input.visitorId) }), profile)) {
      if (changed) await this.profiles.updateOne({ _id }, { $set: metadataChanges(input.metadata, now) })
      return { profileId: _id.toHexString(), created: false, changed }
    }
    await this.linkVisitor(input, profile, now)
    return await this.listVisitor(profile, input, changed, now)
  }

  /**
   * Inserts the profile listing the visitor, links the visitor, then checks
   * that this incarnation was not erased meanwhile (a lookup of a record that
   * almost never exists, cheaper than reading the profile back).
   */
  private async createProfile (input: UpsertProfileInput, now: Date): Promise<UpsertProfileResult | null> {
    checkProfileLimits(input.metadata, input.limits)
    const profile = profileDocument(input.websiteId, input.userId, input.visitorId, input.metadata, now)
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
   * metadata, in one write that returns the profile, so that an erasure since
   * the read is seen: then null, and the call runs again.
   */
  private async listVisitor (profile: ProfileDocument, input: UpsertProfileInput, changed: boolean, now: Date): Promise<UpsertProfileResult | null> {
    const set = changed ? metadataChanges(input.metadata, now) : {}
    const update: UpdateFilter<ProfileDocument> = {}
    if (listsVisitors(profile) && profile.visitorIds.length < LISTED_VISITORS_MAX) {
      update.$addToSet = { visitorIds: input.visitorId }
    } else {
      // A full list is given up; one already given up is marked again, so that there is always a write that returns the profile.
      Object.assign(set, VISITOR_LEFT.$set)
      if (listsVisitors(profile)) update.$unset = VISITOR_LEFT.$unset
    }
    if (Object.keys(set).length > 0) update.$set = set
    const written = await this.profiles.findOneAndUpdate({ _id: profile._id }, update, { returnDocument: 'after' })
    if (written === null || !written.incarnation.equals(profile.incarnation)) return null
    return { profileId: profile._id.toHexString(), created: false, changed: true }
  }

  /** Points the visitor at this profile; the profile it leaves, if any, stops trusting its list. */
  private async linkVisitor (input: UpsertProfileInput, profile: ProfileDocument, now: Date): Promise<void> {
    const { _id, ...fields } = visitorLinkDocument(input.websiteId, input.visitorId, profile, now)
    const before = await retryOnDuplicateKey(async () =>
      await this.visitorLinks.findOneAndUpdate({ _id }, { $set: fields }, { upsert: true, returnDocument: 'before' }))
    if (before !== null && !before.profileId.equals(profile._id)) await this.profiles.updateOne({ _id: before.profileId }, VISITOR_LEFT)
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
   * Every profile of a website through one cursor, a batch at a time: memory
   * stays constant whatever the number of profiles. No sort: MongoDB walks
   * the websiteId index anyway, and the stand-in would sort every profile in
   * its memory before answering the first batch.
   */
  async * exportProfiles (websiteId: string, batchSize = 1000): AsyncGenerator<Profile> {
    const cursor = this.profiles.find({ websiteId: new ObjectId(websiteId) }, { batchSize })
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
   * Deletes the profile and every visitor link to it: four commands, however
   * many links (the links in one deleteMany). The erasure is recorded first,
   * so that a call that created this incarnation and linked a visitor after
   * the deleteMany sees the record and links again, and so that an erasure
   * cut short after the delete (a 503) is finished by the next one, which
   * finds the profile gone and deletes the links its records name. Null
   * when the website has no such profile.
   */
  async eraseProfile (websiteId: string, profileId: string): Promise<Erasure | null> {
    const _id = new ObjectId(profileId)
    const profile = await this.findProfileDocument(websiteId, _id)
    if (profile === null) {
      await this.deleteLinksOfErased(websiteId, _id)
      return null
    }
    await this.recordErasure(profile)
    // By `_id` alone, which the stand-in looks up directly; the same `_id` is always the same website and user.
    const erased = await this.profiles.findOneAndDelete({ _id })
    if (erased === null) return null
    // Erased and created again since the read: the new incarnation is the one erased, recorded too.
    if (!erased.incarnation.equals(profile.incarnation)) await this.recordErasure(erased)
    const { deletedCount } = await this.visitorLinks.deleteMany({ profileId: _id, profileIncarnation: erased.incarnation })
    return { profileId, visitorLinks: deletedCount }
  }

  private async recordErasure (profile: ProfileDocument): Promise<void> {
    try {
      await this.erasedIncarnations.insertOne({ _id: profile.incarnation, websiteId: profile.websiteId, profileId: profile._id, erasedAt: new Date() })
    } catch (error) {
      // Another erasure of this incarnation, or an earlier try of this one, recorded it first.
      if (!isDuplicateKey(error)) throw error
    }
  }

  /** The links left by erasures of this profile id that were cut short; none in the usual case. */
  private async deleteLinksOfErased (websiteId: string, profileId: ObjectId): Promise<void> {
    const erased = await this.erasedIncarnations.find({ profileId, websiteId: new ObjectId(websiteId) }).toArray()
    if (erased.length === 0) return
    await this.visitorLinks.deleteMany({ profileId, profileIncarnation: { $in: erased.map(({ _id }) => _id) } })
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
    const [only, ...more] = documents.filter((document) => !listsVisitors(document)).map((document) => document._id)
    if (only === undefined) return linked
    // $in is a full scan on the stand-in, as is any filter but _id: one query for the whole page.
    const links = this.visitorLinks.find({ profileId: more.length === 0 ? only : { $in: [only, ...more] } }, { sort: { linkedAt: 1, _id: 1 } })
    for await (const link of links) {
      const key = linkKey(link.profileId, link.profileIncarnation)
      linked.set(key, [...linked.get(key) ?? [], link.visitorId])
    }
    return linked
  }
}

/** Feeds the documents a cursor yields to the upgrade, a batch at a time; how many there were. */
async function upgradeEach<T> (cursor: AsyncIterable<T>, upgrade: (batch: T[]) => Promise<unknown>): Promise<number> {
  let batch: T[] = []
  let count = 0
  for await (const document of cursor) {
    batch.push(document)
    if (batch.length < UPGRADE_BATCH) continue
    await upgrade(batch)
    count += batch.length
    batch = []
  }
  if (batch.length > 0) await upgrade(batch)
  return count + batch.length
}

const linkKey = (profileId: ObjectId, incarnation: ObjectId): string => `${profileId.toHexString()}:${incarnation.toHexString()}`

/** P, from the profile document and, when it no longer lists its visitors, from its links. */
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
