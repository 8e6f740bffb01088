import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { LRUCache } from 'lru-cache'
import {
  IDENTIFY_WRITE,
  grants,
  hashSecret,
  hasSecretShape,
  parseBearer,
  type CredentialKind
} from '../../domain/credentials.js'
import { ApiError, badRequest, forbidden, notFound, unauthorized } from '../../errors.js'
import type { AccountToken, WebsiteKey } from '../../repositories/credentials.js'
import type { Website } from '../../repositories/websites.js'
import { canonicalObjectId, fieldRules } from '../../schemas/identify.js'

/** Who is calling: the website the call acts on, and the credential that proved it. */
export interface Caller {
  website: Website
  credential: { kind: CredentialKind, id: string }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: resolves the caller before the body is read, so strangers learn nothing of the schema. */
    authenticate: (request: FastifyRequest) => Promise<void>
  }
  interface FastifyRequest {
    caller: Caller | null
  }
}

const unknownCredential = 'Unknown, revoked or expired key or token'

/** A hit skips the database; entries live at most AUTH_CACHE_TTL_MS, so revocations take effect within it. */
function createCache<T extends object> (ttl: number): LRUCache<string, T> | null {
  return ttl > 0 ? new LRUCache<string, T>({ max: 10_000, ttl }) : null
}

export default fp(async (fastify) => {
  const { credentials, websites } = fastify.repositories
  const ttl = fastify.config.AUTH_CACHE_TTL_MS
  const keyCache = createCache<WebsiteKey>(ttl)
  const tokenCache = createCache<AccountToken>(ttl)
  const websiteCache = createCache<Website>(ttl)

  /**
   * A cache hit, else the database. Misses are not cached: a key or a
   * website created a moment ago must work at once.
   */
  async function readThrough<T extends object> (cache: LRUCache<string, T> | null, id: string, load: (id: string) => Promise<T | null>): Promise<T | null> {
    const hit = cache?.get(id)
    if (hit !== undefined) return hit
    const found = await load(id)
    if (found !== null) cache?.set(id, found)
    return found
  }
  const findWebsiteKey = async (hash: string) => await readThrough(keyCache, hash, async (id) => await credentials.findWebsiteKey(id))
  const findAccountToken = async (hash: string) => await readThrough(tokenCache, hash, async (id) => await credentials.findAccountToken(id))
  const findWebsite = async (websiteId: string) => await readThrough(websiteCache, websiteId, async (id) => await websites.findWebsite(id))

  /** The checks of the contract's authentication table, in its order. */
  async function resolveCaller (authorization: string | undefined, websiteIdParam: unknown): Promise<Caller> {
    const parsed = parseBearer(authorization)
    if (!parsed.ok) throw unauthorized(parsed.reason)
    const { credential } = parsed
    if (!hasSecretShape(credential)) throw unauthorized(unknownCredential)
    const hash = hashSecret(credential.secret)

    if (credential.kind === 'websiteKey') {
      const key = await findWebsiteKey(hash)
      if (key === null || key.revoked) throw unauthorized(unknownCredential)
      if (websiteIdParam !== undefined && parseWebsiteId(websiteIdParam) !== key.websiteId) {
        throw forbidden('This website key belongs to another website than websiteId')
      }
      const website = await findWebsite(key.websiteId)
      if (website === null) throw unauthorized(unknownCredential)
      return checkTracking({ website, credential: { kind: 'websiteKey', id: key.id } })
    }

    const token = await findAccountToken(hash)
    if (token === null || token.revoked || (token.expiresAt !== null && token.expiresAt.getTime() <= Date.now())) {
      throw unauthorized(unknownCredential)
    }
    if (!grants(token.permissions, IDENTIFY_WRITE)) throw forbidden(`This token lacks the ${IDENTIFY_WRITE} permission`)
    if (websiteIdParam === undefined) throw badRequest('websiteId is required with an account token')
    const websiteId = parseWebsiteId(websiteIdParam)
    const website = await findWebsite(websiteId)
    if (website === null || website.accountId !== token.accountId) throw notFound('Website not found')
    if (token.websiteIds.length > 0 && !token.websiteIds.includes(websiteId)) {
      throw forbidden('This token is not allowed to act on this website')
    }
    return checkTracking({ website, credential: { kind: 'accountToken', id: token.id } })
  }

  // Failed attempts per client address, in fixed windows, so that keys cannot be guessed at speed.
  const { AUTH_FAILURE_MAX, AUTH_FAILURE_WINDOW_MS } = fastify.config
  const failures = new LRUCache<string, { count: number }>({ max: 100_000, ttl: AUTH_FAILURE_WINDOW_MS })

  fastify.decorateRequest('caller', null)
  /** A credential this process resolved recently; such a caller is never locked out with the guessers at its address. */
  function isKnown (authorization: string | undefined): boolean {
    const parsed = parseBearer(authorization)
    if (!parsed.ok) return false
    const hash = hashSecret(parsed.credential.secret)
    return (parsed.credential.kind === 'websiteKey' ? keyCache : tokenCache)?.has(hash) === true
  }

  fastify.decorate('authenticate', async (request: FastifyRequest) => {
    const failed = failures.get(request.ip)
    if (failed !== undefined && failed.count >= AUTH_FAILURE_MAX && !isKnown(request.headers.authorization)) {
      const retryAfter = Math.max(1, Math.ceil(failures.getRemainingTTL(request.ip) / 1000))
      throw new ApiError(429, 'Too many failed authentications from this address; try again later', { 'retry-after': String(retryAfter) })
    }
    const query = request.query as Record<string, unknown>
    try {
      request.caller = await resolveCaller(request.headers.authorization, query.websiteId)
    } catch (error) {
      if (error instanceof ApiError && error.statusCode === 401) {
        if (failed === undefined) failures.set(request.ip, { count: 1 })
        else failed.count++
      }
      throw error
    }
  })
}, { name: 'auth', dependencies: ['repositories'] })

/** One websiteId, in canonical lowercase; a repeated or malformed one is a 400. */
function parseWebsiteId (value: unknown): string {
  const websiteId = typeof value === 'string' ? canonicalObjectId(value) : null
  if (websiteId === null) throw badRequest(fieldRules.websiteId)
  return websiteId
}

function checkTracking (caller: Caller): Caller {
  if (caller.website.suspended) throw forbidden('Tracking is suspended for this website')
  return caller
}
