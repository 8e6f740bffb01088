import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { createRedisClient, REDIS_TIMEOUT_MS } from '../../redis.js'

/** What falls back to this process's memory when Redis fails. */
export type RedisUse = 'rate-limit' | 'auth-failures' | 'credential-changes'

/** The Redis a fleet of replicas shares, and how it is doing. */
export interface SharedRedis {
  /** Commands fail at once while Redis is unreachable (no offline queue), so that callers fall back to memory instead of waiting. */
  client: Redis
  /** Whether the last thing heard from Redis was an answer rather than an error. */
  isUp: () => boolean
  /** Calls served from memory because Redis failed, by use. */
  fallbacks: Record<RedisUse, number>
  /** Counts one fallback. */
  fellBack: (use: RedisUse) => void
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Null without REDIS_URL: everything then counts in this process, as a single replica needs. */
    redis: SharedRedis | null
  }
}

/**
 * The Redis client the replicas share limits, the lockout and revocations
 * through (REDIS_URL). Redis is never the source of truth: when it is down,
 * each use falls back to memory, a warning is logged once per outage, and
 * the client reconnects by itself.
 */
export default fp(async (fastify) => {
  const url = fastify.config.REDIS_URL
  if (url === '') {
    fastify.decorate('redis', null)
    return
  }
  const client = createRedisClient(url)
  let up = false
  let warned = false
  client.on('ready', () => {
    if (warned) fastify.log.info('Redis is reachable again; limits and revocations are shared again')
    up = true
    warned = false
  })
  client.on('error', (error: Error) => {
    up = false
    if (warned) return
    warned = true
    fastify.log.warn({ err: error }, 'Redis is unreachable; limits count per replica and revocations reach other replicas only through AUTH_CACHE_TTL_MS until it is back')
  })
  client.on('close', () => { up = false })

  const fallbacks: Record<RedisUse, number> = { 'rate-limit': 0, 'auth-failures': 0, 'credential-changes': 0 }
  fastify.decorate('redis', {
    client,
    isUp: () => up && client.status === 'ready',
    fallbacks,
    fellBack: (use: RedisUse) => { fallbacks[use]++ }
  })
  fastify.addHook('onClose', async () => {
    if (client.status === 'ready') await client.quit()
    else client.disconnect()
  })
  // Starting does not wait for Redis beyond one connect timeout: it is not the source of truth.
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, REDIS_TIMEOUT_MS)
    client.once('ready', () => { clearTimeout(timer); resolve() })
  })
}, { name: 'redis' })
