export interface BatchQueueOptions<T> {
  /** A batch is sent as soon as this many items wait. */
  flushAt: number
  /** ...or once the oldest waiting item has waited this long. */
  flushIntervalMs: number
  /** Most items held, waiting and being sent together; past it add() refuses. */
  maxQueueSize: number
  /** Most weight (bytes, for the client) in one batch; a batch takes at least one item whatever its weight. */
  maxBatchWeight: number
  weightOf: (item: T) => number
  /** Sends one batch and reports its failures itself; the queue only waits for it. */
  send: (batch: T[]) => Promise<void>
}

interface Entry<T> {
  item: T
  /** The item's place in the order of add(): batches go out in that order, one at a time. */
  sequence: number
}

/**
 * A bounded FIFO of items sent in batches, one batch at a time, by size or
 * by age, whichever comes first. One batch at a time keeps an outage from
 * turning a backlog into a stampede of concurrent retries; the bound keeps
 * the backlog's memory fixed.
 */
export class BatchQueue<T> {
  private readonly pending: Array<Entry<T>> = []
  /** Items of the batch being sent; never 0 while one is, as a batch holds at least one item. */
  private sendingCount = 0
  private lastAdded = 0
  /** Every item up to this sequence has been answered (batches are answered in order). */
  private answeredThrough = 0
  /** Items up to this sequence go out without waiting for a full batch: their time came, or a flush asked. */
  private dueThrough = 0
  private timer: NodeJS.Timeout | null = null
  private closed = false
  private waiters: Array<{ through: number, resolve: () => void }> = []

  constructor (private readonly options: BatchQueueOptions<T>) {}

  /** Items held: waiting, and in the batch being sent. */
  get size (): number {
    return this.pending.length + this.sendingCount
  }

  /** Queues the item; false when the queue is full. */
  add (item: T): boolean {
    if (this.size >= this.options.maxQueueSize) return false
    this.pending.push({ item, sequence: ++this.lastAdded })
    this.pump()
    return true
  }

  /** Resolves once every item added before the call has been sent and answered (or given up on). */
  async flush (): Promise<void> {
    const through = this.lastAdded
    if (this.answeredThrough >= through) return
    this.dueThrough = Math.max(this.dueThrough, through)
    const answered = new Promise<void>((resolve) => { this.waiters.push({ through, resolve }) })
    this.pump()
    await answered
  }

  /** Stops the timer for good; what is queued is sent only by flush(). */
  close (): void {
    this.closed = true
    this.clearTimer()
  }

  private pump (): void {
    const first = this.pending[0]
    if (first === undefined) {
      this.clearTimer()
      return
    }
    if (this.sendingCount === 0 && (this.pending.length >= this.options.flushAt || first.sequence <= this.dueThrough)) this.sendNext()
    if (this.pending.length === 0) this.clearTimer()
    else this.startTimer()
  }

  private sendNext (): void {
    const batch = this.take()
    const last = batch.at(-1)?.sequence ?? this.answeredThrough
    this.sendingCount = batch.length
    // send() reports its own failures; a throw from it must still not stall the queue.
    void this.options.send(batch.map(({ item }) => item)).catch(() => undefined).then(() => {
      this.sendingCount = 0
      this.answeredThrough = last
      this.waiters = this.waiters.filter((waiter) => {
        if (waiter.through > last) return true
        waiter.resolve()
        return false
      })
      this.pump()
    })
  }

  /** The oldest items, up to flushAt of them and maxBatchWeight in all (at least one). */
  private take (): Array<Entry<T>> {
    let count = 0
    let weight = 0
    for (const { item } of this.pending) {
      weight += this.options.weightOf(item)
      if (count === this.options.flushAt || (count > 0 && weight > this.options.maxBatchWeight)) break
      count++
    }
    return this.pending.splice(0, count)
  }

  private startTimer (): void {
    if (this.timer !== null || this.closed) return
    this.timer = setTimeout(() => {
      this.timer = null
      this.dueThrough = this.lastAdded
      this.pump()
    }, this.options.flushIntervalMs)
    // An idle queue must not keep the host process alive; shutdown() sends what is left.
    this.timer.unref()
  }

  private clearTimer (): void {
    if (this.timer === null) return
    clearTimeout(this.timer)
    this.timer = null
  }
}
