import type { Redis } from 'ioredis'
import type { CredentialChange } from '../domain/credential-resolver.js'
import { createRedisClient } from './redis.js'

/** The Redis channel on which revocations, suspensions and erasures reach every replica. */
export const CREDENTIAL_CHANGES_CHANNEL = 'identify:credential-changes'

const kinds = new Set<unknown>(['websiteKey', 'accountToken', 'website'])

/** A message of the channel, or null for anything else (another publisher's, a later version's). */
export function parseCredentialChange (message: string): CredentialChange | null {
  try {
    const { kind, id } = JSON.parse(message) as Partial<Record<keyof CredentialChange, unknown>>
    return kinds.has(kind) && typeof id === 'string' ? { kind: kind as CredentialChange['kind'], id } : null
  } catch {
    return null
  }
}

/** Tells every replica to drop what it cached about the change; fails if Redis does not answer. */
export async function publishOn (client: Redis, change: CredentialChange): Promise<void> {
  await client.publish(CREDENTIAL_CHANGES_CHANNEL, JSON.stringify({ kind: change.kind, id: change.id }))
}

/** For the CLI. Never throws: the change is already stored, and replicas see it within AUTH_CACHE_TTL_MS anyway. */
export async function publishCredentialChange (redisUrl: string, change: CredentialChange): Promise<'published' | 'no-redis' | 'unreachable'> {
  if (redisUrl === '') return 'no-redis'
  const client = createRedisClient(redisUrl, { retryStrategy: () => null, lazyConnect: true })
  client.on('error', () => { /* answered by the rejected connect or publish below */ })
  try {
    await client.connect()
    await publishOn(client, change)
    return 'published'
  } catch {
    return 'unreachable'
  } finally {
    client.disconnect()
  }
}

/** `onMissed` runs on each drop and after each acknowledged SUBSCRIBE (docs/scaling.md#what-each-replica-keeps-and-what-the-fleet-shares). */
export function subscribeToCredentialChanges (client: Redis, onChange: (change: CredentialChange) => void, onMissed: () => void): Redis {
  // Own connection (a subscribed one takes no other command); subscribed here, not by ioredis, so the acknowledgement is seen.
  const subscriber = client.duplicate({ autoResubscribe: false })
  subscriber.on('error', () => { /* the shared client's listener reports outages once */ })
  let subscribed = false
  subscriber.on('close', () => {
    if (!subscribed) return
    subscribed = false
    onMissed()
  })
  subscriber.on('ready', () => {
    subscriber.subscribe(CREDENTIAL_CHANGES_CHANNEL).then(() => {
      subscribed = true
      onMissed()
    }, () => {
      // Connected but not subscribed (a hung Redis): connect again, which subscribes again.
      if (subscriber.status === 'ready') subscriber.disconnect(true)
    })
  })
  subscriber.on('message', (channel: string, message: string) => {
    const change = channel === CREDENTIAL_CHANGES_CHANNEL ? parseCredentialChange(message) : null
    if (change !== null) onChange(change)
  })
  return subscriber
}
