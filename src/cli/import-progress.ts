import { SingleBar } from 'cli-progress'
import type { CliOutput } from './context.js'
import type { ImportProgress } from './profiles-import.js'

export interface ProgressOptions {
  /** Bytes of the file read so far, and its size; null for standard input, which has no end to measure against. */
  file: { size: number, bytesRead: () => number } | null
  /** Off a terminal, a line at least every this many lines read. */
  everyLines: number
  stderr: CliOutput
}

export interface ProgressDisplay {
  update: (progress: ImportProgress) => void
  stop: () => void
}

/** Off a terminal, a line at least every this many milliseconds while chunks are stored. */
const PLAIN_EVERY_MS = 5000

const number = (value: number): string => Math.round(value).toLocaleString('en-US')

/** A progress bar on a terminal (docs/api.md#profiles-import); plain periodic lines otherwise, which a log keeps readable. */
export function importProgress (options: ProgressOptions): ProgressDisplay {
  return options.stderr.isTTY === true ? progressBar(options) : progressLines(options)
}

function profilesPerSecond (progress: ImportProgress, started: number): number {
  return progress.items / Math.max(0.001, (Date.now() - started) / 1000)
}

function progressBar ({ file, stderr }: ProgressOptions): ProgressDisplay {
  const started = Date.now()
  const bar = new SingleBar({
    stream: stderr,
    hideCursor: true,
    format: file === null
      ? '{lines} lines | {rate} profiles/s | {duration_formatted}'
      : '{bar} {percentage}% | {lines} lines | {rate} profiles/s | ETA {eta_formatted}'
  })
  // The bar's value is bytes of the file, from which it derives the percentage and the ETA.
  bar.start(file?.size ?? 0, 0, { lines: '0', rate: '0' })
  return {
    update: (progress) => {
      bar.update(file?.bytesRead() ?? 0, { lines: number(progress.lines), rate: number(profilesPerSecond(progress, started)) })
    },
    stop: () => { bar.stop() }
  }
}

function progressLines ({ file, everyLines, stderr }: ProgressOptions): ProgressDisplay {
  const started = Date.now()
  let last = { lines: 0, items: 0, at: started }
  let latest: ImportProgress = { lines: 0, items: 0 }
  const write = (progress: ImportProgress): void => {
    const seconds = (Date.now() - started) / 1000
    const share = file === null || file.size === 0 ? undefined : Math.min(1, file.bytesRead() / file.size)
    const where = share === undefined ? '' : `, ${Math.floor(share * 100)}% of the file, ETA ${share === 0 ? '?' : `${number(seconds / share - seconds)} s`}`
    stderr.write(`import: ${number(progress.lines)} lines read, ${number(progress.items)} stored (${number(profilesPerSecond(progress, started))} profiles/s)${where}\n`)
    last = { lines: progress.lines, items: progress.items, at: Date.now() }
  }
  return {
    update: (progress) => {
      latest = { ...progress }
      if (progress.lines - last.lines >= everyLines || Date.now() - last.at >= PLAIN_EVERY_MS) write(progress)
    },
    // Reading runs ahead of storing, so the last chunk stored may come after the last line read.
    stop: () => { if (latest.lines !== last.lines || latest.items !== last.items) write(latest) }
  }
}
