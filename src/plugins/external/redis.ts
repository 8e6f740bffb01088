import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { createRedisClient, REDIS_PROBE_INTERVAL_MS, REDIS_TIMEOUT_MS } from '../../fleet/redis.js'

/** What falls back to this process's memory when Redis fails. */
export type RedisUse = 'rate-limit' | 'auth-failures' | 'credential-changes'

export interface SharedRedis {
  /** Fails at once while unreachable, so callers fall back to memory instead of waiting. */
  client: Redis
  /** Whether to ask Redis at all: connected, and no command failed since it last answered (the breaker is closed). */
  isUp: () => boolean
  fallbacks: Record<RedisUse, number>
  failures: () => number
  /** Counts one fallback of a call that skipped Redis (isUp() was false). */
  fellBack: (use: RedisUse) => void
  /** Counts one fallback and opens the breaker: later calls skip Redis until it answers again. */
  failed: (use: RedisUse) => void
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Null without REDIS_URL: everything then counts in this process, as a single replica needs. */
    redis: SharedRedis | null
  }
}

/** Never the source of truth; the breaker makes a hung Redis cost one timeout per outage, not per call (docs/scaling.md#what-each-replica-keeps-and-what-the-fleet-shares). */
export default fp(async (fastify) => {
  const url = fastify.config.REDIS_URL
  if (url === '') {
    fastify.decorate('redis', null)
    return
  }
  const client = createRedisClient(url)
  let connected = false
  let breakerOpen = false
  let warned = false
  let closing = false
  let probe: NodeJS.Timeout | undefined
  let failures = 0

  const outage = (error: Error): void => {
    if (warned) return
    warned = true
    fastify.log.warn({ err: error }, 'Redis is unreachable; limits count per replica and revocations reach other replicas only through AUTH_CACHE_TTL_MS until it is back')
  }
  const answered = (): void => {
    if (warned) fastify.log.info('Redis is reachable again; limits and revocations are shared again')
    warned = false
    breakerOpen = false
    clearTimeout(probe)
  }
  const probeLater = (): void => {
    probe = setTimeout(() => {
      client.ping().then(answered, () => { if (breakerOpen && !closing) probeLater() })
    }, REDIS_PROBE_INTERVAL_MS)
    probe.unref()
  }

  client.on('ready', () => {
    connected = true
    answered()
  })
  client.on('error', (error: Error) => {
    connected = false
    outage(error)
  })
  client.on('close', () => { connected = false })

  const fallbacks: Record<RedisUse, number> = { 'rate-limit': 0, 'auth-failures': 0, 'credential-changes': 0 }
  fastify.decorate('redis', {
    client,
    isUp: () => connected && !breakerOpen && client.status === 'ready',
    fallbacks,
    failures: () => failures,
    fellBack: (use: RedisUse) => { fallbacks[use]++ },
    failed: (use: RedisUse) => {
      fallbacks[use]++
      failures++
      if (breakerOpen) return
      breakerOpen = true
      outage(new Error('a Redis command failed or got no answer within REDIS_TIMEOUT_MS'))
      if (!closing) probeLater()
    }
  })
  fastify.addHook('onClose', async () => {
    closing = true
    clearTimeout(probe)
    if (client.status === 'ready') await client.quit()
    else client.disconnect()
  })
  // Starting does not wait for Redis beyond one connect timeout: it is not the source of truth.
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, REDIS_TIMEOUT_MS)
    client.once('ready', () => { clearTimeout(timer); resolve() })
  })
}, { name: 'redis' })
