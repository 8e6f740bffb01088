import { Redis, type RedisOptions } from 'ioredis'

/** Short deadlines: a slow or absent Redis costs a call at most this much before it falls back to memory. */
export const REDIS_TIMEOUT_MS = 500

export const REDIS_PROBE_INTERVAL_MS = 1000

/** Never makes a caller wait for an outage: no offline queue, no retries, reconnects by itself. Attach an 'error' listener. */
export function createRedisClient (url: string, overrides: RedisOptions = {}): Redis {
  return new Redis(url, {
    connectTimeout: REDIS_TIMEOUT_MS,
    commandTimeout: REDIS_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
    ...overrides
  })
}
