import { ObjectId } from 'mongodb'
import { checkProfileLimits, planMerge, type MergePlan, type Metadata, type MetadataChange, type ProfileLimits } from '../../domain/metadata.js'
import { contended } from '../../domain/errors.js'
import type { ProfileOutcome } from '../../domain/identify-batch.js'
import { isDuplicateKey, retryOnDuplicateKey } from '../mongo-errors.js'
import {
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
  type ProfileDocument
} from './profile-documents.js'
import { listedMergePipeline } from './profile-merge.js'
import { backOff, MAX_ATTEMPTS, type ProfileCollections } from './profile-store.js'

// Without transactions: each command touches one document, in the order docs/storage.md#the-single-upsert explains.

/** Already checked: visitorId a lowercase UUID, metadata without placeholders, setOnce and unset as docs/api.md#identify-operators. */
export interface UpsertProfileInput {
  websiteId: string
  userId: string
  visitorId: string
  metadata: Metadata
  setOnce?: Metadata
  unset?: readonly string[]
  limits: ProfileLimits
}


const changeOf = (input: UpsertProfileInput): MetadataChange => ({ set: input.metadata, setOnce: input.setOnce ?? {}, unset: input.unset ?? [] })

const outcome = (profile: Pick<ProfileDocument, '_id'>, created: boolean, changed: boolean): ProfileOutcome =>
  ({ profileId: profile._id.toHexString(), created, changed })

export async function upsertProfile (collections: ProfileCollections, input: UpsertProfileInput): Promise<ProfileOutcome> {
  const _id = profileIdFor(input.websiteId, input.userId)
  for (let attempt = 1; ; attempt++) {
    const result = await attemptUpsert(collections, input, _id)
    if (result !== null) return result
    // Another call created the profile first, or an erasure removed it: read again and redo the call.
    if (attempt >= MAX_ATTEMPTS) throw contended()
    await backOff(attempt)
  }
}

/** One try, null when the profile changed under it; the common call is its first command alone (listedMergePipeline). */
async function attemptUpsert (collections: ProfileCollections, input: UpsertProfileInput, _id: ObjectId): Promise<ProfileOutcome | null> {
  const { profiles, visitorLinks } = collections
  const now = new Date()
  const changeId = new ObjectId()
  const profile = await profiles.findOneAndUpdate({ _id }, listedMergePipeline({ ...input, change: changeOf(input), changeId, now }), { returnDocument: 'after' })
  if (profile === null) return await createProfile(collections, input, now)

  if (profile.userId !== input.userId || !profile.websiteId.equals(input.websiteId)) {
    throw new Error('profile id collision: two (website, user_id) pairs derived the same _id')
  }
  if (profile.changeId?.equals(changeId) === true) return outcome(profile, false, true)
  const plan = planMerge(profile.metadata, changeOf(input), input.limits)
  const listed = listsVisitors(profile) ? profile.visitorIds.includes(input.visitorId) : null
  // A listed visitor is linked here: whoever moves its link away unlists it, in a write that ends that call.
  if (listed === true && !plan.changed) return outcome(profile, false, false)
  // Once the list is given up, the visitor's link is the truth.
  if (listed !== false && isLinkTo(await visitorLinks.findOne({ _id: visitorLinkIdFor(input.websiteId, input.visitorId) }), profile)) {
    if (plan.changed) await profiles.updateOne({ _id }, withoutEmpty(metadataChanges(plan, now)))
    return outcome(profile, false, plan.changed)
  }
  await linkVisitor(collections, input, profile, now)
  return await listVisitor(collections, profile, input, plan, now)
}

/** Inserts the profile listing the visitor, links it, then looks up an erasure record (cheaper than reading the profile back). */
async function createProfile (collections: ProfileCollections, input: UpsertProfileInput, now: Date): Promise<ProfileOutcome | null> {
  const metadata = checkProfileLimits(changeOf(input), input.limits)
  const profile = profileDocument(input.websiteId, input.userId, input.visitorId, metadata, now)
  try {
    await collections.profiles.insertOne(profile)
  } catch (error) {
    if (isDuplicateKey(error)) return null
    throw error
  }
  await linkVisitor(collections, input, profile, now)
  if (await collections.erasedIncarnations.findOne({ _id: profile.incarnation }) !== null) return null
  return outcome(profile, true, true)
}

/** Lists the visitor (or gives the full list up) and merges, in one write of the incarnation read, so an erasure since is seen. */
async function listVisitor ({ profiles }: ProfileCollections, profile: ProfileDocument, input: UpsertProfileInput, plan: MergePlan, now: Date): Promise<ProfileOutcome | null> {
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
  const { matchedCount } = await profiles.updateOne({ _id: profile._id, incarnation: profile.incarnation }, withoutEmpty({ $set, $unset, $addToSet }))
  if (matchedCount === 0) return null
  return outcome(profile, false, true)
}

async function linkVisitor ({ profiles, visitorLinks }: ProfileCollections, input: UpsertProfileInput, profile: ProfileDocument, now: Date): Promise<void> {
  const { _id, ...fields } = visitorLinkDocument(input.websiteId, input.visitorId, profile, now)
  const before = await retryOnDuplicateKey(async () =>
    await visitorLinks.findOneAndUpdate({ _id }, { $set: fields }, { upsert: true, returnDocument: 'before' }))
  if (linkLeft(before, profile)) await profiles.updateOne({ _id: before.profileId }, VISITOR_LEFT)
}
