// @fastify/rate-limit's two stores ship without types; the fallback store (rate-limit.ts) needs only this much of them.
declare module '@fastify/rate-limit/store/*.js' {
  import type { FastifyRateLimitStore } from '@fastify/rate-limit'

  type Incr = (key: string, callback: (error: Error | null, result?: { current: number, ttl: number }) => void, timeWindow: number, max: number) => void
  interface Store extends Omit<FastifyRateLimitStore, 'incr' | 'child'> {
    incr: Incr
    child: (routeOptions: object) => Store
  }
  const Store: new (continueExceeding: boolean, exponentialBackoff: boolean, clientOrCacheSize?: unknown, key?: string) => Store
  export default Store
}
