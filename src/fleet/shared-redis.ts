import type { Redis } from 'ioredis'
import { createRedisClient, REDIS_PROBE_INTERVAL_MS, REDIS_TIMEOUT_MS } from './redis.js'

/** What falls back to this process's memory when Redis fails. */
export type RedisUse = 'rate-limit' | 'auth-failures' | 'credential-changes'

interface FleetLog {
  warn: (details: object, message: string) => void
  info: (message: string) => void
}

/** Redis as the fleet shares it, never the source of truth; the breaker makes a hung Redis cost one timeout per outage, not per call (docs/scaling.md#what-each-replica-keeps-and-what-the-fleet-shares). */
export class SharedRedis {
  /** Fails at once while unreachable, so callers fall back to memory instead of waiting. */
  readonly client: Redis
  readonly fallbacks: Record<RedisUse, number> = { 'rate-limit': 0, 'auth-failures': 0, 'credential-changes': 0 }
  private connected = false
  private breakerOpen = false
  private warned = false
  private closing = false
  private probe: NodeJS.Timeout | undefined
  private failureCount = 0

  constructor (url: string, private readonly log: FleetLog) {
    this.client = createRedisClient(url)
    this.client.on('ready', () => {
      this.connected = true
      this.answered()
    })
    this.client.on('error', (error: Error) => {
      this.connected = false
      this.outage(error)
    })
    this.client.on('close', () => { this.connected = false })
  }

  /** Whether to ask Redis at all: connected, and no command failed since it last answered (the breaker is closed). */
  isUp (): boolean {
    return this.connected && !this.breakerOpen && this.client.status === 'ready'
  }

  failures (): number {
    return this.failureCount
  }

  /** Counts one fallback of a call that skipped Redis (isUp() was false). */
  fellBack (use: RedisUse): void {
    this.fallbacks[use]++
  }

  /** Counts one fallback and opens the breaker: later calls skip Redis until it answers again. */
  failed (use: RedisUse): void {
    this.fallbacks[use]++
    this.failureCount++
    if (this.breakerOpen) return
    this.breakerOpen = true
    this.outage(new Error('a Redis command failed or got no answer within REDIS_TIMEOUT_MS'))
    if (!this.closing) this.probeLater()
  }

  /** Resolves once connected, or after one connect timeout: a start does not wait for what is not the source of truth. */
  async connect (): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, REDIS_TIMEOUT_MS)
      this.client.once('ready', () => { clearTimeout(timer); resolve() })
    })
  }

  async close (): Promise<void> {
    this.closing = true
    clearTimeout(this.probe)
    if (this.client.status === 'ready') await this.client.quit()
    else this.client.disconnect()
  }

  private outage (error: Error): void {
    if (this.warned) return
    this.warned = true
    this.log.warn({ err: error }, 'Redis is unreachable; limits count per replica and revocations reach other replicas only through AUTH_CACHE_TTL_MS until it is back')
  }

  private answered (): void {
    if (this.warned) this.log.info('Redis is reachable again; limits and revocations are shared again')
    this.warned = false
    this.breakerOpen = false
    clearTimeout(this.probe)
  }

  private probeLater (): void {
    this.probe = setTimeout(() => {
      this.client.ping().then(() => { this.answered() }, () => { if (this.breakerOpen && !this.closing) this.probeLater() })
    }, REDIS_PROBE_INTERVAL_MS)
    this.probe.unref()
  }
}
