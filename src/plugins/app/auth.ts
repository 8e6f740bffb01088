import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { AuthFailures } from '../../fleet/auth-failures.js'
import { publishOn, subscribeToCredentialChanges } from '../../fleet/credential-changes.js'
import { DomainError, tooMany } from '../../domain/errors.js'
import {
  CredentialResolver,
  type AccountCaller,
  type CredentialChange,
  type CredentialRef,
  type WebsiteAccess,
  type WebsiteCaller
} from '../../domain/credential-resolver.js'

/** A callback hook, so that a website caller whose credential is cached is answered without a promise. */
type AuthHook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void

const isUnauthenticated = (error: unknown): boolean => error instanceof DomainError && error.kind === 'unauthenticated'

/** A route's authentication: its onRequest hook, and the caller that hook resolved, typed as present. */
export interface Authentication<Caller> {
  onRequest: AuthHook
  caller: (request: FastifyRequest) => Caller
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Call after a revocation, a suspension or an erasure: this process drops its cache entry at once, other replicas via Redis. */
    invalidateCredential: (change: CredentialChange) => Promise<void>
    /** A website route's authentication: resolves the caller before the body is read, so strangers learn nothing of the schema. */
    authenticate: (access: WebsiteAccess) => Authentication<WebsiteCaller>
    /** An account route's authentication: a dft_ token holding the permission. */
    authenticateAccount: (permission: string) => Authentication<AccountCaller>
  }
  interface FastifyRequest {
    /** The website caller, once `authenticate` resolved it; null before, and on every other route. */
    caller: WebsiteCaller | null
    /** The account caller, once `authenticateAccount` resolved it; null before, and on every other route. */
    accountCaller: AccountCaller | null
    /** The credential either hook resolved, whichever ran; null before or without authentication. */
    credential: CredentialRef | null
  }
}

function resolved<Caller> (caller: Caller | null): Caller {
  if (caller === null) throw new Error('The route reads a caller its onRequest hook did not resolve')
  return caller
}

/** Failures are throttled per client address so that keys cannot be guessed at speed (docs/api.md#failed-authentication-lockout). */
export default fp(async (fastify) => {
  const { credentials, websites } = fastify.repositories
  const { AUTH_CACHE_TTL_MS, AUTH_FAILURE_MAX, AUTH_FAILURE_WINDOW_MS } = fastify.config
  const resolver = new CredentialResolver({
    findWebsiteKey: async (hash) => await credentials.findWebsiteKey(hash),
    findAccountToken: async (hash) => await credentials.findAccountToken(hash),
    findWebsite: async (id) => await websites.findWebsite(id)
  }, AUTH_CACHE_TTL_MS)

  const failures = new AuthFailures(AUTH_FAILURE_WINDOW_MS, fastify.redis)

  /**
   * A cached credential's caller, or its refusal, at once; null when the
   * credential must be read or is refused as unknown, for throttled to count.
   * Skipping the lockout here is right because every rule runs after the
   * credential's own look-up: any other answer is about a cached credential.
   */
  function knownCaller (resolve: () => WebsiteCaller | null): WebsiteCaller | Error | null {
    try {
      return resolve()
    } catch (error) {
      if (isUnauthenticated(error)) return null
      if (error instanceof Error) return error
      throw error
    }
  }

  async function throttled (request: FastifyRequest, resolve: () => Promise<void>): Promise<void> {
    // A caller whose credential resolved recently is never locked out with the guessers at its address, nor costs a look-up.
    if (!resolver.isKnown(request.headers.authorization)) {
      const failed = await failures.count(request.ip)
      if (failed.count >= AUTH_FAILURE_MAX) {
        const retryAfter = Math.max(1, Math.ceil(failed.remainingMs / 1000))
        throw tooMany('Too many failed authentications from this address; try again later', retryAfter)
      }
    }
    try {
      await resolve()
    } catch (error) {
      if (isUnauthenticated(error)) await failures.add(request.ip)
      throw error
    }
  }

  const redis = fastify.redis
  if (redis !== null) {
    // Changes made on other replicas or by the CLI; after an outage, anything may have been missed.
    const subscriber = subscribeToCredentialChanges(redis.client, (change) => { resolver.forget(change) }, () => { resolver.forgetAll() })
    fastify.addHook('onClose', async () => { subscriber.disconnect() })
  }
  fastify.decorate('invalidateCredential', async (change: CredentialChange) => {
    resolver.forget(change)
    if (redis === null) return
    try {
      await publishOn(redis.client, change)
    } catch (error) {
      redis.failed('credential-changes')
      fastify.log.warn({ err: error, change }, 'Could not tell the other replicas of a change; they see it within AUTH_CACHE_TTL_MS')
    }
  })
  fastify.decorateRequest('caller', null)
  fastify.decorateRequest('accountCaller', null)
  fastify.decorateRequest('credential', null)
  fastify.decorate('authenticate', (access: WebsiteAccess): Authentication<WebsiteCaller> => ({
    onRequest: (request, _reply, done) => {
      const { websiteId } = request.query as Record<string, unknown>
      const known = knownCaller(() => resolver.cachedWebsiteCaller(request.headers.authorization, websiteId, access))
      if (known instanceof Error) {
        done(known)
      } else if (known !== null) {
        request.caller = known
        request.credential = known.credential
        done()
      } else {
        throttled(request, async () => {
          request.caller = await resolver.resolveWebsiteCaller(request.headers.authorization, websiteId, access)
          request.credential = request.caller.credential
        }).then(() => { done() }, done)
      }
    },
    caller: (request) => resolved(request.caller)
  }))
  fastify.decorate('authenticateAccount', (permission: string): Authentication<AccountCaller> => ({
    onRequest: (request, _reply, done) => {
      throttled(request, async () => {
        request.accountCaller = await resolver.resolveAccountCaller(request.headers.authorization, permission)
        request.credential = request.accountCaller.credential
      }).then(() => { done() }, done)
    },
    caller: (request) => resolved(request.accountCaller)
  }))
}, { name: 'auth', dependencies: ['repositories', 'redis'] })
