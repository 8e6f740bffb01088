import type { IdentifyAction } from '../schemas/identify.js'
import { invalid } from './errors.js'
import type { ProfileOutcome } from './identify-batch.js'
import { canonicalUuid } from './ids.js'
import { checkFieldName, checkMetadata, isStorableString, quoteKey, type Metadata, type MetadataChange, type MetadataLimits } from './metadata.js'

/** The message for each rule a field can break, shared by the domain's errors and the OpenAPI text. */
export const fieldRules = {
  user_id: 'user_id must be a string of 1 to 255 characters with at least one that is not white space, and no NUL or unpaired surrogate',
  datafast_visitor_id: 'datafast_visitor_id must be a UUID string in the 8-4-4-4-12 hexadecimal form',
  websiteId: 'websiteId must be 24 hexadecimal characters'
} as const

export const USER_ID_MAX_LENGTH = 255
/** Linear to match: a leading run of white space, then anything without NUL. */
export const USER_ID_PATTERN = '^\\s*[^\\s\\u0000][^\\u0000]*$'

/** What broken clients send for a user they do not know (PostHog refuses a similar list); USER_ID_DENYLIST replaces it. */
export const DEFAULT_USER_ID_DENYLIST: readonly string[] = [
  'undefined', 'null', 'nan', 'none', 'nil', '[object object]', 'true', 'false', '0', '-1', 'anonymous', 'guest',
  'id', 'user_id', 'distinct_id', 'not_authenticated', 'email'
]
/** A broken client's placeholder visitor; DataFast's own SDK makes version-4 UUIDs. */
export const NIL_UUID = '00000000-0000-0000-0000-000000000000'

export const placeholderUserIdRule = 'user_id is a placeholder that a broken client sends for an unknown user (such as "undefined", "null" or "guest"); send the user\'s own id'
export const nilVisitorIdRule = 'datafast_visitor_id must not be the nil UUID 00000000-0000-0000-0000-000000000000, a placeholder of broken clients'

export interface IdentifyRules {
  limits: MetadataLimits
  userIdDenylist: ReadonlySet<string>
}

/** The operators an identify body may carry beside plain fields, the only `$` keys accepted (docs/api.md#identify-operators). */
export const SET_ONCE = '$set_once'
export const UNSET = '$unset'
export const UNSET_MAX_NAMES = 100

export interface IdentifyInput {
  userId: string
  visitorId: string
  change: MetadataChange
}

function checkUserId (value: unknown, denylist: ReadonlySet<string>): string {
  if (value === undefined) throw invalid(`user_id is required: ${fieldRules.user_id}`)
  if (typeof value !== 'string') throw invalid(fieldRules.user_id)
  // Characters are code points, as JSON Schema's maxLength counts them.
  const length = Array.from(value).length
  if (length < 1 || length > USER_ID_MAX_LENGTH || value.trim() === '' || !isStorableString(value)) throw invalid(fieldRules.user_id)
  if (denylist.has(value.trim().toLowerCase())) throw invalid(placeholderUserIdRule)
  return value
}

function checkVisitorId (value: unknown): string {
  if (value === undefined) throw invalid(`datafast_visitor_id is required: ${fieldRules.datafast_visitor_id}`)
  const visitorId = typeof value === 'string' ? canonicalUuid(value) : null
  if (visitorId === null) throw invalid(fieldRules.datafast_visitor_id)
  if (visitorId === NIL_UUID) throw invalid(nilVisitorIdRule)
  return visitorId
}

/** The one check of an identify body, for a single call and for each item of a batch; each rule has its own message. */
export function checkIdentifyBody (body: unknown, rules: IdentifyRules): IdentifyInput {
  if (!isObject(body)) throw invalid('The request body must be a JSON object')
  const { user_id: userId, datafast_visitor_id: visitorId, [SET_ONCE]: setOnce, [UNSET]: unset, ...metadata } = body
  const checkedUserId = checkUserId(userId, rules.userIdDenylist)
  const checkedVisitorId = checkVisitorId(visitorId)
  if (setOnce !== undefined && !isObject(setOnce)) throw invalid(`${SET_ONCE} must be an object of metadata fields`)
  const unsetNames = checkUnset(unset)
  const onceNames = new Set(Object.keys(setOnce ?? {}))
  const twice = namedTwice([...Object.keys(metadata), ...onceNames, ...unsetNames])
  if (twice !== undefined) throw invalid(`field ${quoteKey(twice)} is named more than once across plain fields, ${SET_ONCE} and ${UNSET}`)
  // Checked together, so that the request's field count and size cover both.
  const kept = checkMetadata({ ...metadata, ...setOnce }, rules.limits)
  const change: MetadataChange = { set: {}, setOnce: {}, unset: unsetNames }
  for (const [name, value] of Object.entries(kept)) (onceNames.has(name) ? change.setOnce : change.set)[name] = value
  return { userId: checkedUserId, visitorId: checkedVisitorId, change }
}

function checkUnset (value: unknown): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value) || value.some((name) => typeof name !== 'string')) throw invalid(`${UNSET} must be an array of field names`)
  if (value.length > UNSET_MAX_NAMES) throw invalid(`${UNSET} names ${value.length} fields; at most ${UNSET_MAX_NAMES} are allowed`)
  const names = value as string[]
  names.forEach(checkFieldName)
  return names
}

function namedTwice (names: string[]): string | undefined {
  const seen = new Set<string>()
  return names.find((name) => seen.size === seen.add(name).size)
}

const isObject = (value: unknown): value is Metadata => typeof value === 'object' && value !== null && !Array.isArray(value)

export function parseUserIdDenylist (text: string): ReadonlySet<string> {
  return new Set(text.split(',').map((word) => word.trim().toLowerCase()).filter((word) => word !== ''))
}

export interface ProfileUpsert {
  websiteId: string
  userId: string
  visitorId: string
  metadata: Metadata
  setOnce: Metadata
  unset: readonly string[]
  limits: MetadataLimits
}

export interface IdentifyProfileStore {
  upsertProfile: (input: ProfileUpsert) => Promise<ProfileOutcome>
}

export interface IdentifyOutcome {
  action: IdentifyAction
  profileId: string | null
}

/** One identify call (docs/api.md#identify): a cookieless website stores nothing. */
export async function identify (profiles: IdentifyProfileStore, website: { id: string, cookieless: boolean }, input: IdentifyInput, rules: IdentifyRules): Promise<IdentifyOutcome> {
  if (website.cookieless) return { action: 'skipped', profileId: null }
  const { userId, visitorId, change } = input
  const stored = await profiles.upsertProfile({ websiteId: website.id, userId, visitorId, metadata: change.set, setOnce: change.setOnce, unset: change.unset, limits: rules.limits })
  return { action: stored.created ? 'created' : stored.changed ? 'updated' : 'unchanged', profileId: stored.profileId }
}
