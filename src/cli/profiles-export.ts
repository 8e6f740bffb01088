import { once } from 'node:events'
import type { Repositories } from '../storage/repositories/index.js'
import { CliError, type CliIo, type CliOutput } from './context.js'

/** About what one write of an export sends: large enough to amortise the call, small enough to stay out of the heap's way. */
const EXPORT_CHUNK_CHARACTERS = 256 * 1024

/** Writes every profile of the website to stdout as NDJSON, one profile a line. */
export async function exportProfiles (io: CliIo, profiles: Repositories['profiles'], websiteId: string): Promise<void> {
  const output = stdoutWriter(io.stdout)
  const progress = exportProgress(io.stderr)
  // Lines go out in chunks: on Linux a write to a pipe is synchronous, one system call each.
  let chunk = ''
  try {
    for await (const profile of profiles.exportProfiles(websiteId)) {
      chunk += `${JSON.stringify(profile)}\n`
      progress.count()
      if (chunk.length < EXPORT_CHUNK_CHARACTERS) continue
      await output.write(chunk)
      chunk = ''
    }
    if (chunk !== '') await output.write(chunk)
  } finally {
    progress.done()
    output.release()
  }
}

/** Writes, waiting while the stream is full, so that memory stays constant however slow the reader; fails once the reader is gone. */
function stdoutWriter (stdout: CliOutput): { write: (text: string) => Promise<void>, release: () => void } {
  let failed: Error | null = null
  const onError = (error: Error): void => { failed = error }
  stdout.on('error', onError)
  return {
    write: async (text) => {
      if (failed !== null) throw new CliError(`stdout closed before the export ended (${failed.message})`)
      if (!stdout.write(text)) await once(stdout, 'drain')
    },
    release: () => { stdout.removeListener('error', onError) }
  }
}

/** A line on stderr, rewritten once a second, when stderr is a terminal; nothing otherwise. */
function exportProgress (stderr: CliOutput): { count: () => void, done: () => void } {
  let exported = 0
  const started = Date.now()
  const show = (): void => { stderr.write(`\rexported ${exported.toLocaleString('en-US')} profiles (${Math.round(exported / Math.max(1, (Date.now() - started) / 1000)).toLocaleString('en-US')}/s)`) }
  const timer = stderr.isTTY === true ? setInterval(show, 1000) : undefined
  return {
    count: () => { exported++ },
    done: () => {
      if (timer === undefined) return
      clearInterval(timer)
      show()
      stderr.write('\n')
    }
  }
}
