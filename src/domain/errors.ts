/** What kind of rule a call broke, in the domain's words; the errors plugin maps each to an HTTP status. */
export type DomainErrorKind = 'invalid' | 'unauthenticated' | 'forbidden' | 'not-found' | 'conflict'

/** A rule of the service was broken; the message names the rule and is safe to show to the caller. */
export class DomainError extends Error {
  override name = 'DomainError'

  constructor (readonly kind: DomainErrorKind, message: string) {
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
