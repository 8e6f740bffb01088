/** Retry-After, in seconds, for a 503 that is expected to pass: an overload, a database away. */
export const RETRY_AFTER_SECONDS = '5'

/** An error whose status and message are safe to show to the caller as they are. */
export class ApiError extends Error {
  override name = 'ApiError'

  constructor (
    readonly statusCode: number,
    message: string,
    readonly headers: Record<string, string> = {}
  ) {
    super(message)
  }
}

export const badRequest = (message: string) => new ApiError(400, message)

