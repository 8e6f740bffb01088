import type { AnyBulkWriteOperation, ObjectId } from 'mongodb'
import type { ProfileOutcome } from '../../domain/identify-batch.js'
import { DomainError } from '../../domain/errors.js'
import type { IdentifyInput } from '../../domain/identify.js'
import { checkProfileLimits, planMerge, type ProfileLimits } from '../../domain/metadata.js'
import {
  inIdOrder,
  isLinkTo,
  LISTED_VISITORS_MAX,
  listsVisitors,
  profileDocument,
  profileIdFor,
  visitorLinkDocument,
  visitorLinkIdFor,
  withoutEmpty,
  type ProfileDocument,
  type VisitorLinkDocument
} from './profile-documents.js'

/** An entry's outcome, or the conflict with its profile's limits that refused it. */
export type BatchEntryResult = ProfileOutcome | DomainError

/** A profile of the batch: as read, and as the entries so far left it. */
interface PlannedProfile {
  read: ProfileDocument | null
  /** Null while the profile does not exist. */
  current: ProfileDocument | null
  touched: Set<string>
  metadataChanged: boolean
  linked: string[]
  /** Some entry changed it, or a visitor left it. */
  written: boolean
}

interface PlannedLink {
  read: VisitorLinkDocument | null
  current: VisitorLinkDocument | null
}

export interface LinkMove {
  /** As read: the move is made only if it is still so. */
  from: VisitorLinkDocument
  link: VisitorLinkDocument
}

/** The bulk writes of a batch, in the order profile-batch-executor.ts sends them; each list in `_id` order (inIdOrder). */
export interface BatchWrites {
  results: BatchEntryResult[]
  /** New profiles, in their state after the whole batch. */
  inserts: ProfileDocument[]
  linkInserts: VisitorLinkDocument[]
  /** Links that move from one profile to another: as read, and in their state after the batch. */
  linkMoves: LinkMove[]
  /** Profiles outside the batch that a visitor left: each gets VISITOR_LEFT. */
  marks: ObjectId[]
  /** Each by `_id` and the incarnation read, so that none lands on a profile erased and created again since. */
  profileUpdates: Array<AnyBulkWriteOperation<ProfileDocument>>
  /** The incarnations written: inserted, or updated as read; none may have been erased meanwhile. */
  incarnations: ObjectId[]
}

/** The batch as planned so far: its profiles and links by `_id`, and the profiles outside it that visitors left. */
interface Plan {
  websiteId: string
  limits: ProfileLimits
  now: Date
  profiles: Map<string, PlannedProfile>
  links: Map<string, PlannedLink>
  left: Map<string, ObjectId>
}

/** Runs the entries in memory exactly as upsertProfile would one after the other (docs/storage.md#the-batch-executor). */
export function planBatch (
  websiteId: string,
  entries: IdentifyInput[],
  stored: { profiles: ProfileDocument[], links: VisitorLinkDocument[] },
  limits: ProfileLimits,
  now: Date
): BatchWrites {
  const profiles = new Map<string, PlannedProfile>()
  for (const read of stored.profiles) {
    const current = { ...read, ...(read.visitorIds === undefined ? {} : { visitorIds: [...read.visitorIds] }) }
    profiles.set(read._id.toHexString(), { read, current, touched: new Set(), metadataChanged: false, linked: [], written: false })
  }
  const links = new Map<string, PlannedLink>(stored.links.map((read) => [read._id, { read, current: read }]))
  const plan: Plan = { websiteId, limits, now, profiles, links, left: new Map() }
  const results = entries.map((entry): BatchEntryResult => {
    try {
      return planEntry(plan, entry)
    } catch (error) {
      if (error instanceof DomainError) return error
      throw error
    }
  })
  return { results, ...profileWrites(profiles, now), ...linkWrites(links), marks: marksOf(plan.left, profiles) }
}

function planEntry (plan: Plan, entry: IdentifyInput): ProfileOutcome {
  const { websiteId, limits, now, profiles, links } = plan
  const _id = profileIdFor(websiteId, entry.userId)
  const profileId = _id.toHexString()
  const planned = profiles.get(profileId) ?? { read: null, current: null, touched: new Set(), metadataChanged: false, linked: [], written: false }
  profiles.set(profileId, planned)
  const profile = planned.current
  if (profile === null) {
    const metadata = checkProfileLimits(entry.change, limits)
    planned.current = profileDocument(websiteId, entry.userId, entry.visitorId, metadata, now)
    linkVisitor(plan, entry.visitorId, planned, planned.current)
    return { profileId, created: true, changed: true }
  }
  if (profile.userId !== entry.userId || !profile.websiteId.equals(websiteId)) {
    throw new Error('profile id collision: two (website, user_id) pairs derived the same _id')
  }
  const merge = planMerge(profile.metadata, entry.change, limits)
  if (merge.changed) {
    profile.metadata = merge.merged
    for (const name of [...Object.keys(merge.set), ...merge.unset]) planned.touched.add(name)
    planned.metadataChanged = true
    planned.written = true
  }
  const listed = listsVisitors(profile) ? profile.visitorIds.includes(entry.visitorId) : null
  if (listed !== false && isLinkTo(links.get(visitorLinkIdFor(websiteId, entry.visitorId))?.current ?? null, profile)) {
    return { profileId, created: false, changed: merge.changed }
  }
  linkVisitor(plan, entry.visitorId, planned, profile)
  if (listsVisitors(profile) && profile.visitorIds.length < LISTED_VISITORS_MAX) {
    if (!profile.visitorIds.includes(entry.visitorId)) profile.visitorIds.push(entry.visitorId)
  } else {
    giveUpList(profile)
  }
  return { profileId, created: false, changed: true }
}

/** Points the visitor at the profile; the profile it leaves stops trusting its list. */
function linkVisitor ({ websiteId, now, profiles, links, left }: Plan, visitorId: string, planned: PlannedProfile, profile: ProfileDocument): void {
  const _id = visitorLinkIdFor(websiteId, visitorId)
  const link = links.get(_id) ?? { read: null, current: null }
  links.set(_id, link)
  const before = link.current
  if (before !== null && !before.profileId.equals(profile._id)) {
    left.set(before.profileId.toHexString(), before.profileId)
    const leftProfile = profiles.get(before.profileId.toHexString())
    if (leftProfile?.current != null) {
      giveUpList(leftProfile.current)
      leftProfile.written = true
    }
  }
  link.current = visitorLinkDocument(websiteId, visitorId, profile, now)
  planned.linked.push(visitorId)
  planned.written = true
}

function giveUpList (profile: ProfileDocument): void {
  profile.visitorIdsInLinks = true
  delete profile.visitorIds
}

function profileWrites (profiles: Map<string, PlannedProfile>, now: Date): Pick<BatchWrites, 'inserts' | 'profileUpdates' | 'incarnations'> {
  const inserts: ProfileDocument[] = []
  const incarnations: ObjectId[] = []
  const profileUpdates: Array<AnyBulkWriteOperation<ProfileDocument>> = []
  for (const { read, current, touched, metadataChanged, linked, written } of inIdOrder(profiles)) {
    if (current === null) continue
    if (read === null) {
      inserts.push(current)
      incarnations.push(current.incarnation)
      continue
    }
    if (!written) continue
    incarnations.push(read.incarnation)
    const $set: Record<string, unknown> = {}
    const $unset: Record<string, ''> = {}
    const $addToSet: Record<string, unknown> = {}
    if (metadataChanged) $set.updatedAt = now
    // Every field an entry wrote or removed, as it ends: concurrent writes end in the state of some serial order.
    for (const name of touched) {
      if (Object.hasOwn(current.metadata, name)) $set[`metadata.${name}`] = current.metadata[name]
      else $unset[`metadata.${name}`] = ''
    }
    if (listsVisitors(current)) {
      if (linked.length > 0) $addToSet.visitorIds = { $each: [...new Set(linked)] }
    } else {
      $set.visitorIdsInLinks = true
      if (listsVisitors(read)) $unset.visitorIds = ''
    }
    profileUpdates.push({ updateOne: { filter: { _id: current._id, incarnation: read.incarnation }, update: withoutEmpty({ $set, $unset, $addToSet }) } })
  }
  return { inserts, profileUpdates, incarnations }
}

function linkWrites (links: Map<string, PlannedLink>): Pick<BatchWrites, 'linkInserts' | 'linkMoves'> {
  const linkInserts: VisitorLinkDocument[] = []
  const linkMoves: LinkMove[] = []
  for (const { read, current } of inIdOrder(links)) {
    if (current === null || current === read) continue
    if (read === null) {
      linkInserts.push(current)
    } else if (!read.profileId.equals(current.profileId) || !read.profileIncarnation.equals(current.profileIncarnation)) {
      linkMoves.push({ from: read, link: current })
    }
  }
  return { linkInserts, linkMoves }
}

/** The profiles a visitor left that no insert or update of the batch already marks. */
function marksOf (left: Map<string, ObjectId>, profiles: Map<string, PlannedProfile>): ObjectId[] {
  return inIdOrder(left).filter((_id) => profiles.get(_id.toHexString())?.current == null)
}
