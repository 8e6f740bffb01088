import { createHash } from 'node:crypto'
import { ObjectId, type UpdateFilter } from 'mongodb'
import type { MergePlan, Metadata } from '../../domain/metadata.js'

/* The shapes of stored profiles and visitor links, shared by the single and the batch paths of ProfilesRepository. */

/**
 * How many visitors a profile document lists itself. Reading a profile is
 * then one lookup by `_id`, and the document stays small: past this many, or
 * once any visitor has left it, its links alone list its visitors.
 */
export const LISTED_VISITORS_MAX = 16

export interface ProfileDocument {
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
  /** The last merge of a listed visitor's call (listedMergePipeline): how that call learns that the database applied it. */
  changeId?: ObjectId
}

/**
 * One document per (website, visitor), so a visitor is on at most one profile
 * per website: the `_id` makes the pair unique. The link is the truth about
 * which profile a visitor is on; a profile's visitorIds is a copy of it.
 */
export interface VisitorLinkDocument {
  _id: string
  websiteId: ObjectId
  visitorId: string
  profileId: ObjectId
  /** The incarnation of the profile linked to. */
  profileIncarnation: ObjectId
  linkedAt: Date
}

/**
 * The profile's `_id` is the first 12 bytes of SHA-256(website, user_id): the
 * database enforces one profile per pair through `_id` alone, and every hot
 * lookup is one by `_id`.
 * 96 bits make a collision between two users of one website practically
 * impossible; upsertProfile still refuses to merge into a document whose
 * stored (website, user_id) differs.
 */
export function profileIdFor (websiteId: string, userId: string): ObjectId {
  const digest = createHash('sha256').update(websiteId).update('\0').update(userId).digest()
  return new ObjectId(digest.subarray(0, 12))
}

export function visitorLinkIdFor (websiteId: string, visitorId: string): string {
  return `${websiteId}:${visitorId}`
}

/** A new profile listing its first visitor, as upsertProfile creates it; importProfiles writes the same shape. */
export function profileDocument (websiteId: string, userId: string, visitorId: string, metadata: Metadata, now: Date): ProfileDocument {
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

export function visitorLinkDocument (websiteId: string, visitorId: string, profile: Pick<ProfileDocument, '_id' | 'incarnation'>, now: Date): VisitorLinkDocument {
  return {
    _id: visitorLinkIdFor(websiteId, visitorId),
    websiteId: new ObjectId(websiteId),
    visitorId,
    profileId: profile._id,
    profileIncarnation: profile.incarnation,
    linkedAt: now
  }
}

/** The $set and $unset of a merge: each field it writes and removes, and the time. */
export function metadataChanges (plan: Pick<MergePlan, 'set' | 'unset'>, now: Date): { $set: Record<string, unknown>, $unset: Record<string, ''> } {
  const $set: Record<string, unknown> = { updatedAt: now }
  for (const [name, value] of Object.entries(plan.set)) $set[`metadata.${name}`] = value
  const $unset: Record<string, ''> = {}
  for (const name of plan.unset) $unset[`metadata.${name}`] = ''
  return { $set, $unset }
}

/** An update without its empty operators, which MongoDB refuses. */
export function withoutEmpty (update: Record<string, Record<string, unknown>>): UpdateFilter<ProfileDocument> {
  return Object.fromEntries(Object.entries(update).filter(([, fields]) => Object.keys(fields).length > 0))
}

/**
 * The values of a map keyed by `_id` (as text), in that order: a bulk write
 * sends its statements so. DocumentDB runs each write command in one
 * transaction, holding every document it wrote until its end; when all of
 * them take documents in one order, two never wait for each other in a cycle.
 */
export function inIdOrder<T> (byId: ReadonlyMap<string, T>): T[] {
  return [...byId.keys()].sort().map((key) => byId.get(key) as T)
}

export const listsVisitors = (profile: ProfileDocument): profile is ProfileDocument & { visitorIds: string[] } =>
  profile.visitorIdsInLinks !== true && Array.isArray(profile.visitorIds)

export const isLinkTo = (link: VisitorLinkDocument | null, profile: Pick<ProfileDocument, '_id' | 'incarnation'>): boolean =>
  link !== null && link.profileId.equals(profile._id) && link.profileIncarnation.equals(profile.incarnation)

/**
 * Whether a link as it was before a write pointed elsewhere, so that the
 * profile it pointed at must stop trusting its list. Another incarnation of
 * the same `_id` counts: a call that lags behind an erasure can move a link
 * from the profile created since back to the erased one.
 */
export const linkLeft = (before: VisitorLinkDocument | null, to: Pick<ProfileDocument, '_id' | 'incarnation'>): before is VisitorLinkDocument =>
  before !== null && !isLinkTo(before, to)

/** What a profile gets when a visitor leaves it: from then on, its links list its visitors. */
export const VISITOR_LEFT: UpdateFilter<ProfileDocument> = { $set: { visitorIdsInLinks: true }, $unset: { visitorIds: '' } }
