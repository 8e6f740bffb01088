/**
 * The part of autocannon 8's API the bench uses: the package ships no types
 * and @types/autocannon is not installed.
 */
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  namespace autocannon {
    interface RequestParams {
      method?: string
      path?: string
      headers?: Record<string, string>
      body?: string | Buffer
    }

    interface Request extends RequestParams {
      /** Returns the request to send; a falsy value restarts the sequence. */
      setupRequest?: (request: RequestParams, context: Record<string, unknown>) => RequestParams | null
      onResponse?: (status: number, body: string, context: Record<string, unknown>) => void
    }

    interface Options {
      url: string
      connections?: number
      /** Seconds. */
      duration?: number
      /** Seconds to wait for an answer. */
      timeout?: number
      method?: string
      headers?: Record<string, string>
      requests?: Request[]
    }

    interface Histogram {
      average: number
      p50: number
      p99: number
      total: number
    }

    interface Result {
      /** Seconds. */
      duration: number
      errors: number
      timeouts: number
      non2xx: number
      latency: Histogram
      requests: Histogram
      statusCodeStats: Record<string, { count: number }>
    }

    interface Instance extends EventEmitter, PromiseLike<Result> {
      /** `responseTime` is in milliseconds, with fractions. */
      on (event: 'response', listener: (client: unknown, statusCode: number, bytes: number, responseTime: number) => void): this
      /** A call that got no answer (refused, reset, timed out). */
      on (event: 'reqError', listener: (error: Error) => void): this
    }
  }

  function autocannon (options: autocannon.Options): autocannon.Instance
  export = autocannon
}
