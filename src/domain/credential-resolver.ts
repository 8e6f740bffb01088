import { LRUCache } from 'lru-cache'
import type { AccountToken, Website, WebsiteKey } from './accounts.js'
import { grantsAny, hashSecret, hasSecretShape, parseBearer, type CredentialKind } from './credentials.js'
import { forbidden, invalid, notFound, unauthenticated } from './errors.js'
import { fieldRules } from './identify.js'
import { canonicalObjectId } from './ids.js'

export interface CredentialSources {
  findWebsiteKey: (hash: string) => Promise<WebsiteKey | null>
  findAccountToken: (hash: string) => Promise<AccountToken | null>
  findWebsite: (websiteId: string) => Promise<Website | null>
}

export interface CredentialRef {
  kind: CredentialKind
  id: string
}

export interface WebsiteCaller {
  website: Website
  credential: CredentialRef
}

/** Who calls an account route: always a dft_ token, with the rules it was made under. */
export interface AccountCaller {
  accountId: string
  credential: CredentialRef
  token: AccountToken
}

export interface WebsiteAccess {
  /** A dft_ token needs one of these (`*` grants all); a df_ key may do everything on its website. */
  permissions: readonly string[]
  /** Reads and erasures still answer for a suspended website; identify does not. */
  allowSuspended: boolean
}

/** A change after which a cached entry must not be used again. */
export type CredentialChange = { kind: CredentialKind | 'website', id: string }

const unknownCredential = 'Unknown, revoked or expired key or token'

/** A hit skips the database; entries live at most `ttl` ms, so a change elsewhere takes effect within it. */
function createCache<T extends object> (ttl: number): LRUCache<string, T> | null {
  return ttl > 0 ? new LRUCache<string, T>({ max: 10_000, ttl }) : null
}

/** One websiteId, in canonical lowercase; a repeated or malformed one is invalid. */
function parseWebsiteId (value: unknown): string {
  const websiteId = typeof value === 'string' ? canonicalObjectId(value) : null
  if (websiteId === null) throw invalid(fieldRules.websiteId)
  return websiteId
}

function isActive (token: AccountToken): boolean {
  return !token.revoked && (token.expiresAt === null || token.expiresAt.getTime() > Date.now())
}

interface Presented { kind: CredentialKind, hash: string }

const noReads = (): Reads => ({ keys: new Map(), tokens: new Map(), websites: new Map() })

const needs = (permissions: readonly string[]) => `This token lacks the ${permissions.join(' or ')} permission`

/** The credentials and websites one call has read, misses included. */
interface Reads {
  keys: Map<string, WebsiteKey | null>
  tokens: Map<string, AccountToken | null>
  websites: Map<string, Website | null>
}

/** Thrown by the rules at a look-up that neither the cache nor the call has answered: the call makes the read, then runs the rules again. */
class ReadNeeded extends Error {
  constructor (readonly read: () => Promise<void>) {
    super('a credential read is needed')
  }
}

/**
 * In the order of docs/api.md#authentication-checks, with the caches of
 * docs/api.md#credential-cache. The rules are written once, synchronously, so
 * that a cached credential resolves without a promise (cachedWebsiteCaller);
 * a call that must read runs them again after each read (reading).
 */
export class CredentialResolver {
  private readonly keys
  private readonly tokens
  private readonly websites
  private changes = 0

  constructor (private readonly sources: CredentialSources, cacheTtlMs: number) {
    this.keys = createCache<WebsiteKey>(cacheTtlMs)
    this.tokens = createCache<AccountToken>(cacheTtlMs)
    this.websites = createCache<Website>(cacheTtlMs)
  }

  async resolveWebsiteCaller (authorization: string | undefined, websiteIdParam: unknown, access: WebsiteAccess): Promise<WebsiteCaller> {
    const presented = this.presented(authorization)
    return await this.reading((reads) => this.websiteCallerFrom(presented, websiteIdParam, access, reads))
  }

  /** The caller, or its refusal, when the cache holds all it takes; null when a read is needed (then resolveWebsiteCaller). */
  cachedWebsiteCaller (authorization: string | undefined, websiteIdParam: unknown, access: WebsiteAccess): WebsiteCaller | null {
    if (this.keys === null) return null
    try {
      return this.websiteCallerFrom(this.presented(authorization), websiteIdParam, access, noReads())
    } catch (error) {
      if (error instanceof ReadNeeded) return null
      throw error
    }
  }

  /** Account routes take dft_ tokens only: a df_ key acts on one website, never on its account. */
  async resolveAccountCaller (authorization: string | undefined, permission: string): Promise<AccountCaller> {
    const presented = this.presented(authorization)
    return await this.reading((reads) => this.accountCallerFrom(presented, permission, reads))
  }

  /** A credential resolved recently; such a caller is never locked out with the guessers at its address. */
  isKnown (authorization: string | undefined): boolean {
    const parsed = parseBearer(authorization)
    if (!parsed.ok) return false
    const hash = hashSecret(parsed.credential.secret)
    return (parsed.credential.kind === 'websiteKey' ? this.keys : this.tokens)?.has(hash) === true
  }

  /** Drops what a revocation, a suspension or an erasure made stale, so this process sees it at once. */
  forget (change: CredentialChange): void {
    this.changes++
    if (change.kind === 'website') this.websites?.delete(change.id)
    else forgetById(change.kind === 'websiteKey' ? this.keys : this.tokens, change.id)
  }

  /** Drops everything cached, for when changes may have been missed (a lost connection to the other replicas). */
  forgetAll (): void {
    this.changes++
    this.keys?.clear()
    this.tokens?.clear()
    this.websites?.clear()
  }

  private websiteCallerFrom (presented: Presented, websiteIdParam: unknown, access: WebsiteAccess, reads: Reads): WebsiteCaller {
    let caller: WebsiteCaller
    if (presented.kind === 'websiteKey') {
      const key = this.lookUp(reads.keys, this.keys, presented.hash, this.sources.findWebsiteKey)
      if (key === null || key.revoked) throw unauthenticated(unknownCredential)
      if (websiteIdParam !== undefined && parseWebsiteId(websiteIdParam) !== key.websiteId) {
        throw forbidden('This website key belongs to another website than websiteId')
      }
      const website = this.lookUp(reads.websites, this.websites, key.websiteId, this.sources.findWebsite)
      if (website === null) throw unauthenticated(unknownCredential)
      caller = { website, credential: { kind: 'websiteKey', id: key.id } }
    } else {
      const token = this.activeToken(presented.hash, reads)
      if (!grantsAny(token.permissions, access.permissions)) throw forbidden(needs(access.permissions))
      if (websiteIdParam === undefined) throw invalid('websiteId is required with an account token')
      const websiteId = parseWebsiteId(websiteIdParam)
      const website = this.lookUp(reads.websites, this.websites, websiteId, this.sources.findWebsite)
      if (website === null || website.accountId !== token.accountId) throw notFound('Website not found')
      if (token.websiteIds.length > 0 && !token.websiteIds.includes(websiteId)) {
        throw forbidden('This token is not allowed to act on this website')
      }
      caller = { website, credential: { kind: 'accountToken', id: token.id } }
    }
    if (caller.website.suspended && !access.allowSuspended) throw forbidden('Tracking is suspended for this website')
    return caller
  }

  private accountCallerFrom (presented: Presented, permission: string, reads: Reads): AccountCaller {
    if (presented.kind === 'websiteKey') {
      const key = this.lookUp(reads.keys, this.keys, presented.hash, this.sources.findWebsiteKey)
      if (key === null || key.revoked) throw unauthenticated(unknownCredential)
      throw forbidden('Account routes take a dft_ account token, not a df_ website key')
    }
    const token = this.activeToken(presented.hash, reads)
    if (!grantsAny(token.permissions, [permission])) throw forbidden(needs([permission]))
    return { accountId: token.accountId, credential: { kind: 'accountToken', id: token.id }, token }
  }

  private presented (authorization: string | undefined): Presented {
    const parsed = parseBearer(authorization)
    if (!parsed.ok) throw unauthenticated(parsed.reason)
    if (!hasSecretShape(parsed.credential)) throw unauthenticated(unknownCredential)
    return { kind: parsed.credential.kind, hash: hashSecret(parsed.credential.secret) }
  }

  /** Runs the rules, making each read they stop at, until they answer. */
  private async reading<T> (rules: (reads: Reads) => T): Promise<T> {
    const reads = noReads()
    for (;;) {
      try {
        return rules(reads)
      } catch (error) {
        if (!(error instanceof ReadNeeded)) throw error
        await error.read()
      }
    }
  }

  /** What the call has read, or else the cache, kept for the call's next run; otherwise the rules stop here until the call has read it. */
  private lookUp<T extends object> (read: Map<string, T | null>, cache: LRUCache<string, T> | null, id: string, load: (id: string) => Promise<T | null>): T | null {
    if (read.has(id)) return read.get(id) ?? null
    const hit = cache?.get(id)
    if (hit === undefined) throw new ReadNeeded(async () => { read.set(id, await this.readThrough(cache, id, load)) })
    // A later run of this call must see what this one saw, even if the entry is forgotten meanwhile.
    read.set(id, hit)
    return hit
  }

  /** Misses are not cached (a new key must work at once), nor a read made while a change arrived: it may predate the change. */
  private async readThrough<T extends object> (cache: LRUCache<string, T> | null, id: string, load: (id: string) => Promise<T | null>): Promise<T | null> {
    const changesBefore = this.changes
    const found = await load(id)
    if (found !== null && this.changes === changesBefore) cache?.set(id, found)
    return found
  }

  private activeToken (hash: string, reads: Reads): AccountToken {
    const token = this.lookUp(reads.tokens, this.tokens, hash, this.sources.findAccountToken)
    if (token === null || !isActive(token)) throw unauthenticated(unknownCredential)
    return token
  }
}

/** Caches are keyed by hash; a change names an id, so look for it (rare, and at most 10,000 entries). */
function forgetById (cache: LRUCache<string, WebsiteKey> | LRUCache<string, AccountToken> | null, id: string): void {
  if (cache === null) return
  for (const [hash, entry] of cache.entries()) if (entry.id === id) cache.delete(hash)
}
