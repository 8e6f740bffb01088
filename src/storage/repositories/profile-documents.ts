import { createHash } from 'node:crypto'
import { ObjectId, type UpdateFilter } from 'mongodb'
import type { MergePlan, Metadata } from '../../domain/metadata.js'

/* The stored shapes of profiles and visitor links, shared by every job module (docs/storage.md#documents). */

/** Visitors a profile lists itself, so a read is one lookup by `_id`; past this, its links list them. */
export const LISTED_VISITORS_MAX = 16

export interface ProfileDocument {
  _id: ObjectId
  websiteId: ObjectId
  userId: string
  metadata: Metadata
  createdAt: Date
  updatedAt: Date
  /** New for each profile created, since one erased and created again keeps its `_id`. */
  incarnation: ObjectId
  visitorIds?: string[]
  visitorIdsInLinks?: true
  changeId?: ObjectId
}

/** One per (website, visitor): the truth about which profile a visitor is on. */
export interface VisitorLinkDocument {
  _id: string
  websiteId: ObjectId
  visitorId: string
  profileId: ObjectId
  profileIncarnation: ObjectId
  linkedAt: Date
}

/** 12 bytes of SHA-256(website, user_id): one profile per pair through `_id` alone. */
export function profileIdFor (websiteId: string, userId: string): ObjectId {
  const digest = createHash('sha256').update(websiteId).update('\0').update(userId).digest()
  return new ObjectId(digest.subarray(0, 12))
}

export function visitorLinkIdFor (websiteId: string, visitorId: string): string {
  return `${websiteId}:${visitorId}`
}

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

/** Values in `_id` order, as bulk writes send them, so DocumentDB's write transactions never deadlock. */
export function inIdOrder<T> (byId: ReadonlyMap<string, T>): T[] {
  return [...byId.keys()].sort().map((key) => byId.get(key) as T)
}

export const listsVisitors = (profile: ProfileDocument): profile is ProfileDocument & { visitorIds: string[] } =>
  profile.visitorIdsInLinks !== true && Array.isArray(profile.visitorIds)

export const isLinkTo = (link: VisitorLinkDocument | null, profile: Pick<ProfileDocument, '_id' | 'incarnation'>): boolean =>
  link !== null && link.profileId.equals(profile._id) && link.profileIncarnation.equals(profile.incarnation)

/** The link before a write pointed elsewhere (another incarnation counts), so that profile stops trusting its list. */
export const linkLeft = (before: VisitorLinkDocument | null, to: Pick<ProfileDocument, '_id' | 'incarnation'>): before is VisitorLinkDocument =>
  before !== null && !isLinkTo(before, to)

export const VISITOR_LEFT: UpdateFilter<ProfileDocument> = { $set: { visitorIdsInLinks: true }, $unset: { visitorIds: '' } }
