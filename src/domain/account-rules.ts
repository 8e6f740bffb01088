import type { AccountToken, WebsiteChanges } from './accounts.js'
import { checkPermissions, grants } from './credentials.js'
import { conflict, forbidden, invalid, notFound } from './errors.js'
import { canonicalObjectId } from './ids.js'
import { isStorableString } from './metadata.js'

// The Account API's and the command line's rules: one check per field, each with the message both show.

export const NAME_MAX_LENGTH = 100
/** A label: not only white space, no NUL (checkName also refuses unpaired surrogates). */
export const NAME_PATTERN = '^\\s*[^\\s\\u0000][^\\u0000]*$'
export const DOMAIN_MAX_LENGTH = 253
/** A host name: labels of letters, digits and inner hyphens, joined by dots; no scheme, port or path. */
export const DOMAIN_PATTERN = '^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$'
/** A day, or a day and a time with its zone: without a zone the expiry would depend on the machine that parsed it. */
export const EXPIRES_AT_PATTERN = '^\\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\\d|3[01])' +
  '(?:T(?:[01]\\d|2[0-3]):[0-5]\\d(?::[0-5]\\d(?:\\.\\d+)?)?(?:Z|[+-](?:[01]\\d|2[0-3]):[0-5]\\d))?$'
export const MAX_TOKEN_WEBSITES = 100

const nameShape = new RegExp(NAME_PATTERN)
const domainShape = new RegExp(DOMAIN_PATTERN)
const expiresAtShape = new RegExp(EXPIRES_AT_PATTERN)

/** The message for each rule a field can break, shared by the domain's errors and the OpenAPI text. */
export const accountFieldRules = {
  domain: `domain must be a host name such as example.com: at most ${DOMAIN_MAX_LENGTH} characters, labels of letters, digits and hyphens joined by dots`,
  name: `name must be 1 to ${NAME_MAX_LENGTH} characters, not only white space, without NUL or unpaired surrogates`,
  expiresAt: 'expiresAt must be an ISO 8601 date such as 2030-01-31 or 2030-01-31T12:00:00Z (a time needs its zone)',
  expiresAtPast: 'expiresAt must be in the future',
  websiteIds: `websiteIds must be a list of at most ${MAX_TOKEN_WEBSITES} website ids of 24 hexadecimal characters`,
  permissions: 'permissions must be a list of permission names',
  id: 'id must be 24 hexadecimal characters'
} as const

export interface WebsiteInput {
  domain: string
  cookieless: boolean
}

export interface ApiKeyInput {
  name: string
}

export interface AccessTokenInput {
  name: string
  permissions: string[]
  /** Empty means every website of the account. */
  websiteIds: string[]
  expiresAt: Date | null
}

/** Shortened and quoted, so that a hostile field name cannot flood or break a message. */
function quote (text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)
}

export function checkDomain (value: unknown): string {
  if (typeof value !== 'string' || value.length > DOMAIN_MAX_LENGTH || !domainShape.test(value)) throw invalid(accountFieldRules.domain)
  // Host names are compared in lowercase everywhere.
  return value.toLowerCase()
}

export function checkName (value: unknown): string {
  // Characters are code points, as JSON Schema's maxLength counts them.
  if (typeof value !== 'string' || !nameShape.test(value) || !isStorableString(value) || Array.from(value).length > NAME_MAX_LENGTH) {
    throw invalid(accountFieldRules.name)
  }
  return value.trim()
}

/** An expiry in the future; a date alone means its midnight UTC. */
export function checkExpiresAt (value: unknown, now = Date.now()): Date {
  if (typeof value !== 'string' || !expiresAtShape.test(value)) throw invalid(accountFieldRules.expiresAt)
  const date = new Date(value)
  // new Date rolls 2030-02-30 over into March: the calendar day must survive the round trip.
  const day = value.slice(0, 10)
  const calendarDay = new Date(`${day}T00:00:00Z`)
  if (Number.isNaN(date.getTime()) || Number.isNaN(calendarDay.getTime()) || calendarDay.toISOString().slice(0, 10) !== day) {
    throw invalid(accountFieldRules.expiresAt)
  }
  if (date.getTime() <= now) throw invalid(accountFieldRules.expiresAtPast)
  return date
}

export function checkWebsiteIds (value: unknown): string[] {
  if (!Array.isArray(value) || value.length > MAX_TOKEN_WEBSITES) throw invalid(accountFieldRules.websiteIds)
  const ids = value.map((item) => typeof item === 'string' ? canonicalObjectId(item) : null)
  if (ids.includes(null)) throw invalid(accountFieldRules.websiteIds)
  return [...new Set(ids as string[])]
}

export function checkPermissionList (value: unknown): string[] {
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw invalid(accountFieldRules.permissions)
  return checkPermissions(value)
}

function checkBoolean (value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') throw invalid(`${field} must be true or false`)
  return value
}

export function checkId (value: unknown): string {
  const id = typeof value === 'string' ? canonicalObjectId(value) : null
  if (id === null) throw invalid(accountFieldRules.id)
  return id
}

/** A JSON object with only the given fields: a misspelt field (expires_at) must not be ignored silently. */
function fieldsOf (body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('The request body must be a JSON object')
  const unknown = Object.keys(body).find((field) => !allowed.includes(field))
  if (unknown !== undefined) throw invalid(`field ${quote(unknown)} is not allowed; the fields are ${allowed.join(', ')}`)
  return body as Record<string, unknown>
}

function required (fields: Record<string, unknown>, field: string, rule: string): unknown {
  if (fields[field] === undefined) throw invalid(`${field} is required: ${rule}`)
  return fields[field]
}

export function checkWebsiteInput (body: unknown): WebsiteInput {
  const fields = fieldsOf(body, ['domain', 'cookieless'])
  return {
    domain: checkDomain(required(fields, 'domain', accountFieldRules.domain)),
    cookieless: fields.cookieless === undefined ? false : checkBoolean(fields.cookieless, 'cookieless')
  }
}

export function checkWebsiteChanges (body: unknown): WebsiteChanges {
  const fields = fieldsOf(body, ['domain', 'cookieless', 'suspended'])
  if (Object.keys(fields).length === 0) throw invalid('Send at least one of domain, cookieless, suspended')
  const changes: WebsiteChanges = {}
  if (fields.domain !== undefined) changes.domain = checkDomain(fields.domain)
  if (fields.cookieless !== undefined) changes.cookieless = checkBoolean(fields.cookieless, 'cookieless')
  if (fields.suspended !== undefined) changes.suspended = checkBoolean(fields.suspended, 'suspended')
  return changes
}

export function checkApiKeyInput (body: unknown): ApiKeyInput {
  const fields = fieldsOf(body, ['name'])
  return { name: fields.name === undefined ? '' : checkName(fields.name) }
}

export function checkAccessTokenInput (body: unknown, now = Date.now()): AccessTokenInput {
  const fields = fieldsOf(body, ['name', 'permissions', 'websiteIds', 'expiresAt'])
  return {
    name: fields.name === undefined ? '' : checkName(fields.name),
    permissions: checkPermissionList(required(fields, 'permissions', accountFieldRules.permissions)),
    websiteIds: fields.websiteIds === undefined ? [] : checkWebsiteIds(fields.websiteIds),
    expiresAt: fields.expiresAt === undefined || fields.expiresAt === null ? null : checkExpiresAt(fields.expiresAt, now)
  }
}

/** Whether a token may act on a website of its account: an empty allow-list allows all of them. */
export function allowsWebsite (token: AccountToken, websiteId: string): boolean {
  return token.websiteIds.length === 0 || token.websiteIds.includes(websiteId)
}

/** A token never makes one wider than itself: permissions, websites and expiry within its own. */
export function checkGrant (creator: AccountToken, wanted: AccessTokenInput): void {
  const exceeding = wanted.permissions.find((permission) => !grants(creator.permissions, permission))
  if (exceeding !== undefined) throw forbidden(`permission ${quote(exceeding)} exceeds this token's own permissions`)
  if (creator.websiteIds.length > 0) {
    if (wanted.websiteIds.length === 0) {
      throw forbidden('This token is limited to some websites, so websiteIds must list some of them: every website of the account exceeds it')
    }
    const outside = wanted.websiteIds.find((id) => !creator.websiteIds.includes(id))
    if (outside !== undefined) throw forbidden(`website ${outside} is outside this token's websites`)
  }
  if (creator.expiresAt !== null) {
    const limit = creator.expiresAt.toISOString()
    if (wanted.expiresAt === null) throw forbidden(`This token expires at ${limit}, so expiresAt is required and no later: a token that never expires exceeds it`)
    if (wanted.expiresAt > creator.expiresAt) throw forbidden(`expiresAt exceeds this token's own expiry, ${limit}`)
  }
}

/** Only a token for every website of the account may add one: a limited token would not reach it. */
export function checkMayCreateWebsite (token: AccountToken): void {
  if (token.websiteIds.length > 0) throw forbidden('A token limited to some websites cannot create a website')
}

export const accountNotFound = (id: string) => notFound(`account ${id} does not exist`)
/** The same answer for an unknown website and one the caller may not see, so that ids cannot be probed. */
export const websiteNotFound = (id: string) => notFound(`website ${id} does not exist`)
export const apiKeyNotFound = (id: string) => notFound(`website key ${id} does not exist`)
export const accessTokenNotFound = (id: string) => notFound(`account token ${id} does not exist`)
export const tokenCapReached = (max: number) =>
  conflict(`The account already has ${max} active tokens, the most MAX_TOKENS_PER_ACCOUNT allows: revoke one first`)
