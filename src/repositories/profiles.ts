import { createHash } from 'node:crypto'
import { ObjectId, type Db } from 'mongodb'
import { checkProfileLimits, planMerge, type Metadata, type ProfileLimits } from '../domain/metadata.js'
import { isDuplicateKey, retryOnDuplicateKey } from './mongo-errors.js'

interface ProfileDocument {
  /** Derived from (website, user_id): see profileIdFor. */
  _id: ObjectId
  websiteId: ObjectId
  userId: string
  metadata: Metadata
  createdAt: Date
  /** When the metadata last changed. */
  updatedAt: Date
}

/**
 * One document per (website, visitor), so a profile with many visitors never
 * grows, and a visitor is on at most one profile per website: the `_id`
 * makes the pair unique.
 */
interface VisitorLinkDocument {
  _id: string
  websiteId: ObjectId
  visitorId: string
  profileId: ObjectId
  linkedAt: Date
}

export interface Profile {
  id: string
  websiteId: string
  userId: string
  metadata: Metadata
  visitorIds: string[]
  createdAt: Date
  updatedAt: Date
}

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

/** A new profile as upsertProfile creates it; importProfiles writes the same shape. */
function profileDocument (websiteId: string, userId: string, metadata: Metadata, now: Date): ProfileDocument {
  return { _id: profileIdFor(websiteId, userId), websiteId: new ObjectId(websiteId), userId, metadata, createdAt: now, updatedAt: now }
}

function visitorLinkDocument (websiteId: string, visitorId: string, profileId: ObjectId, now: Date): VisitorLinkDocument {
  return { _id: visitorLinkIdFor(websiteId, visitorId), websiteId: new ObjectId(websiteId), visitorId, profileId, linkedAt: now }
}

const MAX_ATTEMPTS = 5

export class ProfilesRepository {
  private readonly profiles
  private readonly visitorLinks

  constructor (db: Db) {
    this.profiles = db.collection<ProfileDocument>('profiles')
    this.visitorLinks = db.collection<VisitorLinkDocument>('visitorLinks')
  }

  /** One profile per (website, user_id) needs no index: the `_id` is derived from the pair. */
  async ensureIndexes (): Promise<void> {
    await this.visitorLinks.createIndex({ profileId: 1 }, { name: 'profileId' }, undefined)
  }

  /**
   * Creates or merges the profile of (website, user_id) and links the visitor
   * to it. Reads first, so that limits are checked before anything is written
   * and an unchanged call writes nothing; every write sets all the fields the
   * call sent, so concurrent calls end in the state of some serial order.
   */
  async upsertProfile (input: UpsertProfileInput): Promise<UpsertProfileResult> {
    const _id = profileIdFor(input.websiteId, input.userId)
    const linkId = visitorLinkIdFor(input.websiteId, input.visitorId)

    for (let attempt = 1; ; attempt++) {
      const [profile, link] = await Promise.all([
        this.profiles.findOne({ _id }),
        this.visitorLinks.findOne({ _id: linkId })
      ])
      const linked = link?.profileId.equals(_id) === true
      const now = new Date()

      if (profile === null) {
        checkProfileLimits(input.metadata, input.limits)
        try {
          await this.profiles.insertOne(profileDocument(input.websiteId, input.userId, input.metadata, now))
        } catch (error) {
          // Another call created this profile since we read: merge into it.
          if (isDuplicateKey(error) && attempt < MAX_ATTEMPTS) continue
          throw error
        }
        if (!linked) await this.linkVisitor(input, _id, now)
        return { profileId: _id.toHexString(), created: true, changed: true }
      }

      if (profile.userId !== input.userId || !profile.websiteId.equals(input.websiteId)) {
        throw new Error('profile id collision: two (website, user_id) pairs derived the same _id')
      }
      const { changed } = planMerge(profile.metadata, input.metadata, input.limits)
      if (!changed && linked) return { profileId: _id.toHexString(), created: false, changed: false }

      // The profile document changes only with its metadata; a new visitor is a new link document (with its linkedAt).
      const set: Record<string, unknown> = { updatedAt: now }
      for (const [name, value] of Object.entries(input.metadata)) set[`metadata.${name}`] = value
      await Promise.all([
        changed ? this.profiles.updateOne({ _id }, { $set: set }) : undefined,
        linked ? undefined : this.linkVisitor(input, _id, now)
      ])
      return { profileId: _id.toHexString(), created: false, changed: true }
    }
  }

  /** Points the visitor at this profile, moving it from any other profile of the website. */
  private async linkVisitor (input: UpsertProfileInput, profileId: ObjectId, now: Date): Promise<void> {
    const { _id, ...fields } = visitorLinkDocument(input.websiteId, input.visitorId, profileId, now)
    await retryOnDuplicateKey(async () => await this.visitorLinks.updateOne({ _id }, { $set: fields }, { upsert: true }))
  }

  /**
   * Inserts new profiles, each with one visitor, in bulk and in the very shapes
   * upsertProfile writes (benchmark seeding, imports). Fails on an existing one.
   */
  async importProfiles (websiteId: string, entries: Array<{ userId: string, visitorId: string, metadata: Metadata }>): Promise<void> {
    if (entries.length === 0) return
    const now = new Date()
    const documents = entries.map(({ userId, visitorId, metadata }) => {
      const profile = profileDocument(websiteId, userId, metadata, now)
      return { profile, link: visitorLinkDocument(websiteId, visitorId, profile._id, now) }
    })
    await this.profiles.insertMany(documents.map(({ profile }) => profile))
    await this.visitorLinks.insertMany(documents.map(({ link }) => link))
  }

  async findProfile (websiteId: string, userId: string): Promise<Profile | null> {
    const document = await this.profiles.findOne({ _id: profileIdFor(websiteId, userId) })
    if (document === null) return null
    const links = await this.visitorLinks
      .find({ profileId: document._id }, { sort: { linkedAt: 1, _id: 1 } })
      .toArray()
    return {
      id: document._id.toHexString(),
      websiteId: document.websiteId.toHexString(),
      userId: document.userId,
      metadata: document.metadata,
      visitorIds: links.map((link) => link.visitorId),
      createdAt: document.createdAt,
      updatedAt: document.updatedAt
    }
  }
}
