/**
 * A route's deadline for the whole call, as route options: Fastify's
 * handlerTimeout, past which the error handler answers 503 with Retry-After
 * (src/plugins/app/errors.ts). Each database command has its own timeout, but
 * a call makes several: the deadline bounds their sum. 0 sets none.
 */
export function callDeadline (milliseconds: number): { handlerTimeout?: number } {
  return milliseconds > 0 ? { handlerTimeout: milliseconds } : {}
}
