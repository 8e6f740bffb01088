import fp from 'fastify-plugin'
import rateLimit, { type FastifyRateLimitStoreCtor, type RateLimitOptions } from '@fastify/rate-limit'
import LocalStore from '@fastify/rate-limit/store/LocalStore.js'
import RedisStore from '@fastify/rate-limit/store/RedisStore.js'
import { tooMany } from '../../domain/errors.js'
import type { SharedRedis } from '../../fleet/shared-redis.js'

type Store = InstanceType<typeof LocalStore>

/** Counts in Redis while it answers, else in this replica's memory: a Redis outage never refuses or stalls a call (docs/scaling.md). */
class SharedOrLocalStore {
  constructor (private readonly shared: Store, private readonly local: Store, private readonly redis: SharedRedis) {}

  incr: Store['incr'] = (key, callback, timeWindow, max) => {
    if (!this.redis.isUp()) {
      this.redis.fellBack('rate-limit')
      this.local.incr(key, callback, timeWindow, max)
      return
    }
    this.shared.incr(key, (error, result) => {
      if (error === null) {
        callback(null, result)
        return
      }
      this.redis.failed('rate-limit')
      this.local.incr(key, callback, timeWindow, max)
    }, timeWindow, max)
  }

  child (routeOptions: object): SharedOrLocalStore {
    return new SharedOrLocalStore(this.shared.child(routeOptions), this.local.child(routeOptions), this.redis)
  }
}

function sharedOrLocalStore (redis: SharedRedis): FastifyRateLimitStoreCtor {
  // The published store type gives incr two parameters; the plugin passes four (key, callback, timeWindow, max).
  return class extends SharedOrLocalStore {
    constructor (options: RateLimitOptions) {
      const { continueExceeding = false, exponentialBackoff = false } = options
      super(new RedisStore(continueExceeding, exponentialBackoff, redis.client, 'rate-limit:'), new LocalStore(continueExceeding, exponentialBackoff), redis)
    }
  } as unknown as FastifyRateLimitStoreCtor
}

/** At preParsing, after authentication, so the budget is the credential's, not an address many callers may share. */
export default fp(async (fastify) => {
  await fastify.register(rateLimit, {
    global: false,
    max: fastify.config.RATE_LIMIT_MAX,
    timeWindow: fastify.config.RATE_LIMIT_WINDOW_MS,
    hook: 'preParsing',
    enableDraftSpec: true,
    ...(fastify.redis === null ? {} : { store: sharedOrLocalStore(fastify.redis) }),
    keyGenerator: (request) => request.credential?.id ?? request.ip,
    errorResponseBuilder: (_request, context) =>
      tooMany(`Rate limit exceeded: at most ${context.max} calls per ${context.after}`)
  })
}, { name: 'rate-limit', dependencies: ['auth', 'redis'] })
