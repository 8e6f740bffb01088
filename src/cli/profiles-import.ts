import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { quoteKey } from '../domain/metadata.js'
import type { CheckedBatch } from '../domain/identify-batch.js'
import { decodeUtf8, findDuplicateKey, NOT_UTF8 } from '../plugins/app/json-body.js'
import type { BatchOutcome } from '../schemas/identify-batch.js'

export type ImportCounts = BatchOutcome['counts']

/** A line of the file that stored nothing, and why. */
export interface RefusedLine {
  line: number
  message: string
}

export interface ImportReport {
  counts: ImportCounts
  /** The first MAX_LISTED_REFUSALS refused lines, in file order; counts.failed counts them all. */
  refused: RefusedLine[]
}

/** How far an import has got, after each chunk. */
export interface ImportProgress {
  lines: number
  /** Items sent to be stored, refused ones included: the profiles per second of the progress bar. */
  items: number
}

export interface ImportOptions {
  /** Checks one chunk of identify bodies without the database: checkBatchItems, as identifyBatch does. */
  check: (items: unknown[]) => CheckedBatch
  /** Stores one checked chunk: storeCheckedBatch, as identifyBatch does. */
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

/**
 * Reads NDJSON identify bodies line by line and stores them chunk by chunk,
 * as in file order (docs/api.md#profiles-import). While chunks are stored the
 * next is read, parsed and checked; it is stored beside them unless it names
 * one of their users or visitors: at most MAX_CHUNKS_STORING + 1 chunks are
 * held, so memory does not grow with the file. A line that is not UTF-8 or
 * not one JSON value is refused; blank lines are skipped. The input is bytes.
 */
export async function importNdjson (input: Readable, options: ImportOptions): Promise<ImportReport> {
  const counts: ImportCounts = { created: 0, updated: 0, unchanged: 0, skipped: 0, failed: 0 }
  // Kept sorted by line: a chunk's outcome arrives after the next chunk's unparsable lines.
  const refused: RefusedLine[] = []
  const progress: ImportProgress = { lines: 0, items: 0 }
  const refuse = (line: number, message: string): void => {
    counts.failed++
    if (refused.length === MAX_LISTED_REFUSALS && (refused.at(-1)?.line ?? 0) < line) return
    refused.splice(refused.findLastIndex((earlier) => earlier.line < line) + 1, 0, { line, message })
    if (refused.length > MAX_LISTED_REFUSALS) refused.pop()
  }

  const store = async ({ checked, lineOfItem }: Chunk): Promise<void> => {
    const outcome = await options.store(checked)
    for (const result of outcome.results) {
      if (result.status === 'error') refuse(lineOfItem[result.index] ?? 0, result.error.message)
    }
    for (const name of ['created', 'updated', 'unchanged', 'skipped'] as const) counts[name] += outcome.counts[name]
    progress.items += lineOfItem.length
    options.onProgress(progress)
  }
  let storing: Array<{ done: Promise<void>, names: Set<string> }> = []
  const stored = async (): Promise<void> => {
    const done = storing.map(({ done }) => done)
    storing = []
    await Promise.all(done)
  }
  let items: unknown[] = []
  let lineOfItem: number[] = []
  const send = async (): Promise<void> => {
    if (items.length === 0) return
    const chunk = { checked: options.check(items), lineOfItem }
    items = []
    lineOfItem = []
    // In file order where it matters: a chunk that names a user or a visitor of a chunk being stored waits for it.
    const names = namesOf(chunk.checked)
    if (storing.length >= MAX_CHUNKS_STORING || storing.some((other) => shareAny(other.names, names))) await stored()
    const done = store(chunk)
    // Awaited before a later chunk or at the end; meanwhile a failure is not an unhandled rejection.
    done.catch(() => {})
    storing.push({ done, names })
  }

  // Latin-1 maps each byte to one character, so lines split on bytes and each is decoded strictly.
  input.setEncoding('latin1')
  try {
    for await (const bytes of createInterface({ input, crlfDelay: Infinity })) {
      progress.lines++
      const text = decodeUtf8(Buffer.from(bytes, 'latin1'))
      if (text === undefined) {
        refuse(progress.lines, NOT_UTF8)
        continue
      }
      if (text.trim() === '') continue
      const parsed = parseLine(text)
      if (typeof parsed === 'string') {
        refuse(progress.lines, parsed)
        continue
      }
      items.push(parsed.value)
      lineOfItem.push(progress.lines)
      if (items.length >= options.chunkSize) await send()
    }
    await send()
    await stored()
  } finally {
    // A failed read leaves no write in flight behind it.
    await Promise.allSettled(storing.map(({ done }) => done))
  }
  options.onProgress(progress)
  return { counts, refused }
}

/**
 * Chunks stored at once. Chunks of different users and visitors commute, so
 * storing them side by side keeps the state of file order, and uses the
 * database's pool instead of one connection.
 */
const MAX_CHUNKS_STORING = 3

/** The users and visitors a chunk names. */
const namesOf = (checked: CheckedBatch): Set<string> =>
  new Set(checked.valid.flatMap(({ entry }) => [`user:${entry.userId}`, `visitor:${entry.visitorId}`]))

const shareAny = (a: Set<string>, b: Set<string>): boolean => [...b].some((name) => a.has(name))

/** One line as the body parser of the API reads a body: JSON, each key once per object; or why not. */
function parseLine (text: string): { value: unknown } | string {
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
