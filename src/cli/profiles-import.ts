import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { quoteKey } from '../domain/metadata.js'
import { findDuplicateKey } from '../plugins/app/json-body.js'
import type { BatchOutcome } from '../schemas/identify-batch.js'

export type ImportCounts = BatchOutcome['counts']

/** A line of the file that stored nothing, and why. */
export interface RefusedLine {
  line: number
  message: string
}

export interface ImportReport {
  counts: ImportCounts
  /** At most MAX_LISTED_REFUSALS refused lines, in file order; counts.failed counts them all. */
  refused: RefusedLine[]
}

/** How far an import has got, after each chunk. */
export interface ImportProgress {
  lines: number
  /** Items sent to be stored, refused ones included: the profiles per second of the progress bar. */
  items: number
}

export interface ImportOptions {
  /** Stores one chunk of identify bodies in order: identifyBatch, as the batch route calls it. */
  identify: (items: unknown[]) => Promise<BatchOutcome>
  chunkSize: number
  onProgress: (progress: ImportProgress) => void
}

/** The refused lines listed on stderr; more are only counted. */
export const MAX_LISTED_REFUSALS = 100

/**
 * Reads NDJSON identify bodies line by line and stores them chunk by chunk,
 * in file order (docs/api.md#profiles-import). Only one chunk is held at a
 * time and the reader waits while it is stored, so memory does not grow with
 * the file. A line that is not one JSON value is refused; blank lines are skipped.
 */
export async function importNdjson (input: Readable, options: ImportOptions): Promise<ImportReport> {
  const counts: ImportCounts = { created: 0, updated: 0, unchanged: 0, skipped: 0, failed: 0 }
  const refused: RefusedLine[] = []
  const progress: ImportProgress = { lines: 0, items: 0 }
  const refuse = (line: number, message: string): void => {
    counts.failed++
    if (refused.length < MAX_LISTED_REFUSALS) refused.push({ line, message })
  }

  let items: unknown[] = []
  let lineOfItem: number[] = []
  const store = async (): Promise<void> => {
    if (items.length === 0) return
    const outcome = await options.identify(items)
    for (const result of outcome.results) {
      if (result.status === 'error') refuse(lineOfItem[result.index] ?? 0, result.error.message)
    }
    for (const name of ['created', 'updated', 'unchanged', 'skipped'] as const) counts[name] += outcome.counts[name]
    progress.items += items.length
    items = []
    lineOfItem = []
    options.onProgress(progress)
  }

  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    progress.lines++
    if (text.trim() === '') continue
    const parsed = parseLine(text)
    if (typeof parsed === 'string') {
      refuse(progress.lines, parsed)
      continue
    }
    items.push(parsed.value)
    lineOfItem.push(progress.lines)
    if (items.length >= options.chunkSize) await store()
  }
  await store()
  options.onProgress(progress)
  // Refusals from parsing and from storing interleave by chunk; the list reads in file order.
  refused.sort((a, b) => a.line - b.line)
  return { counts, refused }
}

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
