import { AsyncLocalStorage } from 'node:async_hooks'
import http from 'node:http'

/**
 * Loaded with --import by the http-ceiling-context reference: every request
 * runs inside an AsyncLocalStorage store, the propagation OpenTelemetry's
 * context manager needs to parent a request's database spans, with nothing
 * of OpenTelemetry loaded (docs/benchmarks.md#what-each-row-measures).
 */
const store = new AsyncLocalStorage<{ request: true }>()
// Node's own emit, called with Reflect.apply so that its this and arguments pass unchanged.
const { emit } = http.Server.prototype as unknown as { emit: (...args: unknown[]) => boolean }
http.Server.prototype.emit = function (this: http.Server, event: string | symbol, ...args: unknown[]): boolean {
  const forward = (): boolean => Reflect.apply(emit, this, [event, ...args])
  return event === 'request' ? store.run({ request: true }, forward) : forward()
}
