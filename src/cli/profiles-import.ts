import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { quoteKey } from '../domain/metadata.js'
import type { CheckedBatch } from '../domain/identify-batch.js'
import { decodeUtf8, findDuplicateKey, NOT_UTF8 } from '../plugins/app/json-body.js'
import type { BatchOutcome } from '../schemas/identify-batch.js'

export type ImportCounts = BatchOutcome['counts']

export interface RefusedLine {
  line: number
  message: string
}

export interface ImportReport {
  counts: ImportCounts
  /** The first MAX_LISTED_REFUSALS refused lines, in file order; counts.failed counts them all. */
  refused: RefusedLine[]
}

export interface ImportProgress {
  lines: number
  /** Items sent to be stored, refused ones included: the profiles per second of the progress bar. */
  items: number
}

export interface ImportOptions {
  check: (items: unknown[]) => CheckedBatch
  store: (checked: CheckedBatch) => Promise<BatchOutcome>
  chunkSize: number
  onProgress: (progress: ImportProgress) => void
}

/** The refused lines listed on stderr; more are only counted. */
export const MAX_LISTED_REFUSALS = 100

/** A chunk checked and waiting for the database: its items' line numbers, for the refusals its outcome names. */
interface Chunk {
  checked: CheckedBatch
  lineOfItem: number[]
}

/** Stores NDJSON identify bodies chunk by chunk with check and store, the halves of identifyBatch, as in file order (docs/api.md#profiles-import). */
export async function importNdjson (input: Readable, options: ImportOptions): Promise<ImportReport> {
  const counts: ImportCounts = { created: 0, updated: 0, unchanged: 0, skipped: 0, failed: 0 }
  const { refused, refuse } = refusals(counts)
  const progress: ImportProgress = { lines: 0, items: 0 }
  const queue = storingQueue(async ({ checked, lineOfItem }) => {
    const outcome = await options.store(checked)
    for (const result of outcome.results) {
      if (result.status === 'error') refuse(lineOfItem[result.index] ?? 0, result.error.message)
    }
    for (const name of ['created', 'updated', 'unchanged', 'skipped'] as const) counts[name] += outcome.counts[name]
    progress.items += lineOfItem.length
    options.onProgress(progress)
  })
  let pending: { items: unknown[], lineOfItem: number[] } = { items: [], lineOfItem: [] }
  const send = async (): Promise<void> => {
    if (pending.items.length === 0) return
    const { items, lineOfItem } = pending
    pending = { items: [], lineOfItem: [] }
    await queue.add({ checked: options.check(items), lineOfItem })
  }

  // Latin-1 maps each byte to one character, so lines split on bytes and each is decoded strictly.
  input.setEncoding('latin1')
  try {
    for await (const bytes of createInterface({ input, crlfDelay: Infinity })) {
      const parsed = parseLine(bytes)
      progress.lines++
      if (parsed === null) continue
      if (typeof parsed === 'string') {
        refuse(progress.lines, parsed)
        continue
      }
      pending.items.push(parsed.value)
      pending.lineOfItem.push(progress.lines)
      if (pending.items.length >= options.chunkSize) await send()
    }
    await send()
    await queue.drain()
  } finally {
    // A failed read leaves no write in flight behind it.
    await queue.settle()
  }
  options.onProgress(progress)
  return { counts, refused }
}

function refusals (counts: ImportCounts): { refused: RefusedLine[], refuse: (line: number, message: string) => void } {
  // Kept sorted by line: a chunk's outcome arrives after the next chunk's unparsable lines.
  const refused: RefusedLine[] = []
  const refuse = (line: number, message: string): void => {
    counts.failed++
    if (refused.length === MAX_LISTED_REFUSALS && (refused.at(-1)?.line ?? 0) < line) return
    refused.splice(refused.findLastIndex((earlier) => earlier.line < line) + 1, 0, { line, message })
    if (refused.length > MAX_LISTED_REFUSALS) refused.pop()
  }
  return { refused, refuse }
}

interface StoringQueue {
  add: (chunk: Chunk) => Promise<void>
  drain: () => Promise<void>
  settle: () => Promise<void>
}

function storingQueue (store: (chunk: Chunk) => Promise<void>): StoringQueue {
  let storing: Array<{ done: Promise<void>, names: Set<string> }> = []
  const drain = async (): Promise<void> => {
    const done = storing.map(({ done }) => done)
    storing = []
    await Promise.all(done)
  }
  const add = async (chunk: Chunk): Promise<void> => {
    // In file order where it matters: a chunk that names a user or a visitor of a chunk being stored waits for it.
    const names = namesOf(chunk.checked)
    if (storing.length >= MAX_CHUNKS_STORING || storing.some((other) => shareAny(other.names, names))) await drain()
    const done = store(chunk)
    // Awaited before a later chunk or at the end; meanwhile a failure is not an unhandled rejection.
    done.catch(() => {})
    storing.push({ done, names })
  }
  return { add, drain, settle: async () => { await Promise.allSettled(storing.map(({ done }) => done)) } }
}

/** Chunks stored at once: chunks of different users and visitors commute, and side by side they use the database's pool. */
const MAX_CHUNKS_STORING = 3

const namesOf = (checked: CheckedBatch): Set<string> =>
  new Set(checked.valid.flatMap(({ entry }) => [`user:${entry.userId}`, `visitor:${entry.visitorId}`]))

const shareAny = (a: Set<string>, b: Set<string>): boolean => [...b].some((name) => a.has(name))

/** One line as the body parser of the API reads a body: JSON, each key once per object; or why not; null for a blank line. */
function parseLine (bytes: string): { value: unknown } | string | null {
  const text = decodeUtf8(Buffer.from(bytes, 'latin1'))
  if (text === undefined) return NOT_UTF8
  if (text.trim() === '') return null
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return 'not valid JSON'
  }
  const duplicate = findDuplicateKey(text)
  if (duplicate !== undefined) return `repeats the key ${quoteKey(duplicate)} in one object: send each key once`
  return { value }
}
