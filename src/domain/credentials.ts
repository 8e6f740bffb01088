import { createHash, randomBytes } from 'node:crypto'
import { invalid } from './errors.js'

export type CredentialKind = 'websiteKey' | 'accountToken'

const prefixes: Record<CredentialKind, string> = { websiteKey: 'df_', accountToken: 'dft_' }

/** 32 random bytes: 256 bits of entropy after the prefix, as 43 base64url characters. */
const SECRET_BYTES = 32
const secretShape = /^[A-Za-z0-9_-]{43}$/

export interface PresentedCredential {
  kind: CredentialKind
  /** The whole `df_…` or `dft_…` string as the caller sent it. */
  secret: string
}

export function generateSecret (kind: CredentialKind): string {
  return prefixes[kind] + randomBytes(SECRET_BYTES).toString('base64url')
}

/** Only this hash is stored; the raw secret is shown once, when it is created. */
export function hashSecret (secret: string): string {
  return createHash('sha256').update(secret).digest('hex')
}

/** Enough of a secret to tell keys apart in a listing, far too little to guess the rest. */
export function displayPrefix (secret: string): string {
  return secret.slice(0, secret.startsWith(prefixes.accountToken) ? 10 : 9)
}

export type BearerParse =
  | { ok: true, credential: PresentedCredential }
  | { ok: false, reason: string }

/** A known prefix with the wrong shape is still returned: it matches no stored hash, so it is "unknown" like any wrong key. */
export function parseBearer (header: string | undefined): BearerParse {
  if (header === undefined || header.trim() === '') return { ok: false, reason: 'Missing Authorization header: send "Authorization: Bearer <key>"' }
  const match = /^\s*(\S+)(?:\s+(\S*))?\s*$/.exec(header)
  if (match?.[1]?.toLowerCase() !== 'bearer') return { ok: false, reason: 'Authorization must use the Bearer scheme' }
  const secret = match[2] ?? ''
  if (secret === '') return { ok: false, reason: 'The Bearer token is empty' }
  if (secret.startsWith(prefixes.accountToken)) return { ok: true, credential: { kind: 'accountToken', secret } }
  if (secret.startsWith(prefixes.websiteKey)) return { ok: true, credential: { kind: 'websiteKey', secret } }
  return { ok: false, reason: 'The Bearer token must be a df_ website key or a dft_ account token' }
}

export function hasSecretShape (credential: PresentedCredential): boolean {
  return secretShape.test(credential.secret.slice(prefixes[credential.kind].length))
}

/** The permissions of DataFast's account tokens, and those this service adds for the profiles it stores. */
export const DATAFAST_PERMISSIONS = [
  'analytics:read', 'goals:read', 'goals:write', 'payments:read', 'payments:write', 'identify:write',
  'websites:read', 'websites:write', 'settings:read', 'settings:write', 'funnels:read', 'funnels:write',
  'alerts:read', 'alerts:write', 'team:read', 'team:write', 'api-keys:read', 'api-keys:write'
] as const
export const IDENTIFY_WRITE = 'identify:write'
export const IDENTIFY_READ = 'identify:read'
export const IDENTIFY_DELETE = 'identify:delete'
export const ALL_PERMISSIONS = '*'
export const KNOWN_PERMISSIONS: readonly string[] = [...DATAFAST_PERMISSIONS, IDENTIFY_READ, IDENTIFY_DELETE, ALL_PERMISSIONS]
/** Reading a profile: this service's own permission, or DataFast's analytics reader. */
export const PROFILE_READ_PERMISSIONS: readonly string[] = [IDENTIFY_READ, 'analytics:read']

const known = new Set(KNOWN_PERMISSIONS)

export function checkPermissions (permissions: readonly string[]): string[] {
  if (permissions.length === 0) throw invalid('permissions must name at least one permission')
  const unknown = permissions.find((permission) => !known.has(permission))
  if (unknown !== undefined) {
    throw invalid(`permission ${JSON.stringify(unknown.slice(0, 40))} is unknown; known permissions: ${KNOWN_PERMISSIONS.join(', ')}`)
  }
  return [...new Set(permissions)]
}

export function grants (permissions: readonly string[], needed: string): boolean {
  return permissions.includes(needed) || permissions.includes(ALL_PERMISSIONS)
}

export function grantsAny (permissions: readonly string[], needed: readonly string[]): boolean {
  return needed.some((permission) => grants(permissions, permission))
}
