import type { IdentifyBody } from './generated/api-types.js'

/**
 * Why a call did not succeed:
 * - `rejected`: the service refused it (a 4xx other than 429, or a batch item's error); sending it again would not help;
 * - `unavailable`: 429, 5xx, a network error or a timeout, still so after every retry;
 * - `dropped`: never sent, as the queue was full or the client shut down.
 */
export type IdentifyErrorKind = 'rejected' | 'unavailable' | 'dropped'

export interface IdentifyErrorDetails {
  kind: IdentifyErrorKind
  /** The HTTP status of the last answer; null when none came (network error, timeout) or nothing was sent. */
  status: number | null
  /** How many times the call was sent (0 for a dropped call). */
  attempts: number
  /** For an item refused inside a batch: its position in that batch, as the service answered it. */
  index?: number
  /** The calls this error is about: one for identify() or a refused item, every item of a batch that failed as a whole. */
  calls: readonly IdentifyBody[]
  cause?: unknown
}

/** What identify() rejects with, and what onError receives for queued calls. */
export class IdentifyError extends Error {
  override readonly name = 'IdentifyError'
  readonly kind: IdentifyErrorKind
  readonly status: number | null
  readonly attempts: number
  readonly index: number | undefined
  readonly calls: readonly IdentifyBody[]

  constructor (message: string, details: IdentifyErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.kind = details.kind
    this.status = details.status
    this.attempts = details.attempts
    this.index = details.index
    this.calls = details.calls
  }
}
