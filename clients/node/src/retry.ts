import { setTimeout as sleep } from 'node:timers/promises'
import type { HttpAnswer } from './http-transport.js'

export interface RetryPolicy {
  /** Retries after the first attempt; 0 sends each call once. */
  maxRetries: number
  /** The first retry's delay without Retry-After; each later one doubles it. */
  baseDelayMs: number
  /** No wait is longer, not even one Retry-After asks for. */
  maxDelayMs: number
}

/**
 * 429 (rate limit or lockout) and 503 (database away, overload) say "later"
 * (docs/api.md#status-codes); 502 and 504 come from a proxy whose upstream is
 * away, which is a network error one hop further. Identify is idempotent, so
 * sending the same call again is safe (docs/api.md#identify-idempotence).
 */
export const isRetryableStatus = (status: number): boolean => status === 429 || status === 502 || status === 503 || status === 504

/** Retry-After in milliseconds: delta-seconds or an HTTP date (RFC 9110 10.2.3); null when absent or unreadable. */
export function retryAfterMs (header: string | null, now = Date.now()): number | null {
  if (header === null) return null
  const value = header.trim()
  if (/^\d+$/.test(value)) return Number(value) * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? null : Math.max(0, date - now)
}

/**
 * The wait before retry number `retry` (1 for the first): exponential, with
 * half of each step random so that many clients that failed together do not
 * come back together; never shorter than the service's Retry-After, which
 * gets a little random spread of its own for the same reason.
 */
export function retryDelayMs (retry: number, retryAfter: string | null, policy: RetryPolicy, random: () => number = Math.random): number {
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1))
  const backoff = step / 2 + random() * step / 2
  const asked = retryAfterMs(retryAfter)
  const delay = asked !== null && asked >= backoff ? asked + random() * policy.baseDelayMs : backoff
  return Math.min(policy.maxDelayMs, delay)
}

/** The last attempt's outcome: an answer (whatever its status) or the error of an attempt that got none. */
export type Attempted =
  | { answer: HttpAnswer, attempts: number }
  | { error: unknown, attempts: number }

/**
 * Sends until an answer that is not worth retrying, or until the retries
 * are spent. The waits are ordinary (ref'd) timers: a process draining its
 * calls on shutdown must stay alive through them.
 */
export async function sendWithRetries (send: () => Promise<HttpAnswer>, policy: RetryPolicy): Promise<Attempted> {
  for (let attempts = 1; ; attempts++) {
    let outcome: Attempted
    try {
      outcome = { answer: await send(), attempts }
      if (!isRetryableStatus(outcome.answer.status)) return outcome
    } catch (error) {
      outcome = { error, attempts }
    }
    if (attempts > policy.maxRetries) return outcome
    await sleep(retryDelayMs(attempts, 'answer' in outcome ? outcome.answer.retryAfter : null, policy))
  }
}
