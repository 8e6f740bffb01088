/**
 * What a load process reports back to run.ts. The HTTP runs and the db-floor
 * compute their figures with the same code from the exact latency of every
 * call, so their ratios compare like with like (autocannon's own histogram
 * rounds to whole milliseconds).
 */
export interface Measurement {
  /** Completed calls, successful or not. */
  calls: number
  durationSeconds: number
  /** Successful calls per second. */
  rps: number
  p50Ms: number
  p99Ms: number
  /** HTTP answers outside 200-299. */
  non2xx: number
  /** Calls that got no answer: connection errors, timeouts, driver errors. */
  errors: number
  statusCodes: Record<string, number>
  /** The first message of each failure, by status (or `error` for a call without answer): load shedding tells from a fault. */
  failures: Record<string, string>
  /** The `action` of the successful answers, to show that a scenario does what it claims. */
  actions: Record<string, number>
}

/** Nearest-rank percentile of latencies sorted ascending. */
function percentile (sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)))
  return sorted[rank - 1] ?? 0
}

/** Collects per-call latencies without reallocating on every call. */
export class LatencyRecorder {
  private values = new Float64Array(1 << 16)
  private count = 0

  record (ms: number): void {
    if (this.count === this.values.length) {
      const grown = new Float64Array(this.values.length * 2)
      grown.set(this.values)
      this.values = grown
    }
    this.values[this.count++] = ms
  }

  percentiles (): { p50Ms: number, p99Ms: number } {
    const sorted = this.values.slice(0, this.count).sort()
    return { p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) }
  }
}

/** Keeps the first message seen for this key. */
export function noteFailure (failures: Record<string, string>, key: string, message: string): void {
  failures[key] ??= message.slice(0, 200)
}

export function increment (counts: Record<string, number>, key: string, by = 1): void {
  counts[key] = (counts[key] ?? 0) + by
}

/** The input run.ts sends a child over IPC (not argv, which every `ps` shows, and it holds a key). */
export async function receiveInput<T> (): Promise<T> {
  if (process.send === undefined) throw new Error('this script is started by scripts/bench/run.ts, not by hand')
  const input = new Promise<T>((resolve) => { process.once('message', (message) => { resolve(message as T) }) })
  // Asked for only once listening: a message that arrives before any listener is lost.
  process.send('ready')
  return await input
}

/** Sends a child's result to run.ts and lets the child exit (an open IPC channel keeps it alive). */
export async function replyToParent (measurement: Measurement): Promise<void> {
  const send = process.send?.bind(process)
  if (send === undefined) throw new Error('this script is started by scripts/bench/run.ts, not by hand')
  await new Promise<void>((resolve, reject) => {
    send(measurement, undefined, undefined, (error: Error | null) => { if (error === null) resolve(); else reject(error) })
  })
  process.disconnect()
}
