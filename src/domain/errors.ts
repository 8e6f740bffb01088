/** What kind of rule a call broke, in the service's words; the errors plugin maps each to an HTTP status. */
export type DomainErrorKind =
  | 'invalid' | 'unauthenticated' | 'forbidden' | 'not-found' | 'conflict' | 'unsupported'
  | 'too-many' | 'unavailable' | 'contended'

const RETRY_AFTER_SECONDS = 5

/** The one error type of the service: a broken rule or a passing condition, whose message is safe to show to the caller. */
export class DomainError extends Error {
  override name = 'DomainError'

  constructor (readonly kind: DomainErrorKind, message: string, readonly retryAfterSeconds: number | null = null) {
    super(message)
  }
}

export const invalid = (message: string) => new DomainError('invalid', message)
export const unauthenticated = (message: string) => new DomainError('unauthenticated', message)
export const forbidden = (message: string) => new DomainError('forbidden', message)
export const notFound = (message: string) => new DomainError('not-found', message)
/** A valid request that the stored state cannot take. */
export const conflict = (message: string) => new DomainError('conflict', message)
export const unsupported = (message: string) => new DomainError('unsupported', message)
export const tooMany = (message: string, retryAfterSeconds: number | null = null) => new DomainError('too-many', message, retryAfterSeconds)
export const unavailable = (message: string) => new DomainError('unavailable', message, RETRY_AFTER_SECONDS)
/** Other calls changed the same profile each time this one tried; nothing is half done. */
export const contended = () => new DomainError('contended', 'Other calls are changing this profile at the same moment; try again shortly', RETRY_AFTER_SECONDS)
