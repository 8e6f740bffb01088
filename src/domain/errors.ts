/** What kind of rule a call broke, in the service's words; the errors plugin maps each to an HTTP status. */
export type DomainErrorKind =
  | 'invalid' | 'unauthenticated' | 'forbidden' | 'not-found' | 'conflict' | 'unsupported'
  | 'too-many' | 'unavailable' | 'contended'

/** Seconds to wait before sending again a call refused by an outage or an overload that is expected to pass. */
export const RETRY_AFTER_SECONDS = 5

/** The one error type of the service: a broken rule or a passing condition, whose message is safe to show to the caller. */
export class DomainError extends Error {
  override name = 'DomainError'

  constructor (readonly kind: DomainErrorKind, message: string, readonly retryAfterSeconds: number | null = null) {
    super(message)
  }
}

/** The request itself breaks a rule. */
export const invalid = (message: string) => new DomainError('invalid', message)
/** No valid credential. */
export const unauthenticated = (message: string) => new DomainError('unauthenticated', message)
/** A valid credential that may not do this. */
export const forbidden = (message: string) => new DomainError('forbidden', message)
/** Nothing the caller may see has that id. */
export const notFound = (message: string) => new DomainError('not-found', message)
/** A valid request that the stored state cannot take. */
export const conflict = (message: string) => new DomainError('conflict', message)
/** A body in a form or an encoding the service does not take. */
export const unsupported = (message: string) => new DomainError('unsupported', message)
/** Too many calls from one credential or address, for the seconds given. */
export const tooMany = (message: string, retryAfterSeconds: number | null = null) => new DomainError('too-many', message, retryAfterSeconds)
/** The database or the process cannot serve now; it is expected to pass. */
export const unavailable = (message: string) => new DomainError('unavailable', message, RETRY_AFTER_SECONDS)
/** Other calls changed the same profile each time this one tried; nothing is half done. */
export const contended = (message: string) => new DomainError('contended', message, RETRY_AFTER_SECONDS)
