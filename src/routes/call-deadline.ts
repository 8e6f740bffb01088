/** The route config that gives a call its deadline, answered 503 by the call-deadline plugin: it bounds the sum of a call's database timeouts (docs/reliability.md#no-call-hangs). */
export function callDeadline (milliseconds: number): { callDeadlineMs?: number } {
  return milliseconds > 0 ? { callDeadlineMs: milliseconds } : {}
}
