/** Fastify's handlerTimeout, answered 503: it bounds the sum of a call's database timeouts (docs/reliability.md#no-call-hangs). */
export function callDeadline (milliseconds: number): { handlerTimeout?: number } {
  return milliseconds > 0 ? { handlerTimeout: milliseconds } : {}
}
