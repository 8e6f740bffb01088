import { invalid } from './errors.js'
import { canonicalUuid } from './ids.js'
import { checkMetadata, isStorableString, type Metadata, type MetadataLimits } from './metadata.js'

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

/** Everything an identify body is checked against. */
export interface IdentifyRules {
  limits: MetadataLimits
  /** Lowercase, trimmed; empty turns the check off. */
  userIdDenylist: ReadonlySet<string>
}

/** A checked identify body: the visitor id in lowercase, the metadata without placeholders. */
export interface IdentifyInput {
  userId: string
  visitorId: string
  metadata: Metadata
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

/**
 * Applies every rule of an identify body, each with its own message: the one
 * check of a single call's body and of each item of a batch.
 */
export function checkIdentifyBody (body: unknown, rules: IdentifyRules): IdentifyInput {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('The request body must be a JSON object')
  const { user_id: userId, datafast_visitor_id: visitorId, ...metadata } = body as Metadata
  return {
    userId: checkUserId(userId, rules.userIdDenylist),
    visitorId: checkVisitorId(visitorId),
    metadata: checkMetadata(metadata, rules.limits)
  }
}

/** Parses USER_ID_DENYLIST: comma-separated, compared trimmed and in lowercase. */
export function parseUserIdDenylist (text: string): ReadonlySet<string> {
  return new Set(text.split(',').map((word) => word.trim().toLowerCase()).filter((word) => word !== ''))
}
