import { invalid } from './errors.js'
import { fieldRules, USER_ID_MAX_LENGTH } from './identify.js'
import { canonicalObjectId, canonicalUuid } from './ids.js'
import { isStorableString } from './metadata.js'

export const PAGE_LIMIT_MAX = 250
export const PAGE_LIMIT_DEFAULT = 100
/** A cursor is the base64url form of the 12 bytes of the last profile id of a page. */
export const CURSOR_PATTERN = '^[A-Za-z0-9_-]{16}$'
const cursorShape = new RegExp(CURSOR_PATTERN)

/** The message for each rule of the profile routes' parameters, shared by the domain's errors and the OpenAPI text. */
export const profileRules = {
  profileId: 'profileId must be 24 hexadecimal characters',
  visitorId: 'visitorId must be a UUID in the 8-4-4-4-12 hexadecimal form',
  user_id: fieldRules.user_id,
  limit: `limit must be a whole number from 1 to ${PAGE_LIMIT_MAX}`,
  cursor: 'cursor must be the nextCursor of an earlier page, unchanged'
} as const

export function encodeCursor (profileId: string): string {
  return Buffer.from(profileId, 'hex').toString('base64url')
}

export function decodeCursor (cursor: string): string | null {
  return cursorShape.test(cursor) ? Buffer.from(cursor, 'base64url').toString('hex') : null
}

export function checkProfileId (value: unknown): string {
  const profileId = typeof value === 'string' ? canonicalObjectId(value) : null
  if (profileId === null) throw invalid(profileRules.profileId)
  return profileId
}

/** Any case, as identify takes it; stored and compared in lowercase. */
export function checkVisitorId (value: unknown): string {
  const visitorId = typeof value === 'string' ? canonicalUuid(value) : null
  if (visitorId === null) throw invalid(profileRules.visitorId)
  return visitorId
}

export type ProfilesQuery =
  | { kind: 'user', userId: string }
  | { kind: 'page', limit: number, after: string | null }

/** user_id follows identify's rule without the placeholder list, so a profile stored before the list changed can still be read. */
export function checkProfilesQuery (query: Record<string, unknown>): ProfilesQuery {
  const { user_id: userId, limit, cursor } = query
  const page = { kind: 'page', limit: limit === undefined ? PAGE_LIMIT_DEFAULT : checkPageLimit(limit), after: cursor === undefined ? null : checkCursor(cursor) } as const
  if (userId === undefined) return page
  const length = typeof userId === 'string' ? Array.from(userId).length : 0
  if (typeof userId !== 'string' || length > USER_ID_MAX_LENGTH || userId.trim() === '' || !isStorableString(userId)) {
    throw invalid(profileRules.user_id)
  }
  return { kind: 'user', userId }
}

/** A page size written as digits, as a query string or a command line gives it. */
export function checkPageLimit (value: unknown): number {
  const limit = typeof value === 'string' && /^\d{1,3}$/.test(value) ? Number(value) : 0
  if (limit < 1 || limit > PAGE_LIMIT_MAX) throw invalid(profileRules.limit)
  return limit
}

function checkCursor (value: unknown): string {
  const after = typeof value === 'string' ? decodeCursor(value) : null
  if (after === null) throw invalid(profileRules.cursor)
  return after
}
