import ipaddr from 'ipaddr.js'
import { LRUCache } from 'lru-cache'
import type { SharedRedis } from './shared-redis.js'

/** IPv6 counts by its /64 (one subscriber's network), so rotating inside it does not escape the lockout; IPv4 (mapped too) as is. */
export function addressKey (ip: string): string {
  if (!ipaddr.isValid(ip)) return ip
  const address = ipaddr.process(ip)
  if (address.kind() === 'ipv4') return address.toString()
  const network = ipaddr.IPv6.networkAddressFromCIDR(`${address.toNormalizedString()}/64`)
  return `${network.toString()}/64`
}

// INCR, and start the window on the first failure: one round trip, atomic for the fleet.
const addScript = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`

export interface FailureCount {
  count: number
  remainingMs: number
}

/** Fixed windows, in Redis for the fleet and always in memory too, which answers while Redis is down. */
export class AuthFailures {
  private readonly local: LRUCache<string, { count: number }>

  constructor (private readonly windowMs: number, private readonly redis: SharedRedis | null) {
    this.local = new LRUCache({ max: 100_000, ttl: windowMs })
  }

  async count (ip: string): Promise<FailureCount> {
    const key = addressKey(ip)
    const shared = await this.fromRedis(async (client) => {
      const [count, remainingMs] = await Promise.all([client.get(`auth-failures:${key}`), client.pttl(`auth-failures:${key}`)])
      return { count: Number(count ?? 0), remainingMs: Math.max(0, remainingMs) }
    })
    return shared ?? { count: this.local.get(key)?.count ?? 0, remainingMs: this.local.getRemainingTTL(key) }
  }

  async add (ip: string): Promise<void> {
    const key = addressKey(ip)
    const failed = this.local.get(key)
    if (failed === undefined) this.local.set(key, { count: 1 })
    else failed.count++
    await this.fromRedis(async (client) => await client.eval(addScript, 1, `auth-failures:${key}`, this.windowMs))
  }

  /** The answer of Redis, or null (and a fallback counted) when there is none, it is skipped, or it fails. */
  private async fromRedis<T> (ask: (client: SharedRedis['client']) => Promise<T>): Promise<T | null> {
    if (this.redis === null) return null
    if (!this.redis.isUp()) {
      this.redis.fellBack('auth-failures')
      return null
    }
    try {
      return await ask(this.redis.client)
    } catch {
      this.redis.failed('auth-failures')
      return null
    }
  }
}
