import { parseArgs } from 'node:util'
import { startDatabase, withDatabaseName, type LocalDatabase } from '../../tools/local-database.js'
import type { LoadInput } from './load.js'
import type { Measurement } from './measure.js'
import { BenchError, residentMib, runWorker, startBuiltServer, stopAllChildren, stopChild } from './processes.js'
import { layoutFor, type ScenarioName } from './scenarios.js'
import { identifyTarget, seedDatabase } from './seed.js'

/**
 * `npm run soak`: steady load on the built server for a while (5 minutes by
 * default), in slices that rotate through the write scenarios; reports
 * throughput, errors and the server's resident memory after every slice, so
 * that memory growing without bound shows.
 */
const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    connections: { type: 'string', default: '16' },
    slice: { type: 'string', default: '30' },
    profiles: { type: 'string', default: '10000' }
  }
})
const minutes = Number(values.minutes)
const connections = Number(values.connections)
const sliceSeconds = Number(values.slice)
const profiles = Number(values.profiles)
const rotation: ScenarioName[] = ['update', 'create', 'new-device', 'token']

const log = (line: string): void => { process.stderr.write(`${line}\n`) }
const rssMib = (pid: number): number => residentMib(pid) ?? Number.NaN

let database: LocalDatabase | null = null

async function main (): Promise<void> {
  database = await startDatabase({ log })
  const mongoUrl = withDatabaseName(database.url, 'soak')
  log(`Seeding ${String(profiles)} profiles...`)
  const seeded = await seedDatabase(mongoUrl, profiles, log)
  const server = await startBuiltServer(mongoUrl)
  const layout = layoutFor(seeded.websiteId, profiles)

  const rows: string[] = ['| slice | scenario | req/s | p99 ms | non-2xx | server RSS MiB |', '| ---: | --- | ---: | ---: | ---: | ---: |']
  const startRss = rssMib(server.pid)
  rows.push(`| 0 | (idle, after start) | | | | ${startRss.toFixed(1)} |`)
  const deadline = Date.now() + minutes * 60_000
  let calls = 0
  let errors = 0
  for (let slice = 1; Date.now() < deadline; slice++) {
    const scenario = rotation[(slice - 1) % rotation.length] ?? 'update'
    const seconds = Math.max(1, Math.min(sliceSeconds, Math.round((deadline - Date.now()) / 1000)))
    const input: LoadInput = {
      baseUrl: server.baseUrl,
      ...identifyTarget(seeded, scenario === 'token' ? 'token' : 'key'),
      scenario,
      layout,
      connections,
      durationSeconds: seconds,
      // Every slice starts its counter far from the others', so that no body repeats.
      firstCall: slice * 10_000_000
    }
    const measurement = await runWorker<Measurement>('load.ts', input)
    const nonSuccess = measurement.non2xx + measurement.errors
    calls += measurement.calls
    errors += nonSuccess
    const rss = rssMib(server.pid)
    rows.push(`| ${String(slice)} | ${scenario} | ${measurement.rps.toFixed(1)} | ${measurement.p99Ms.toFixed(1)} | ${String(nonSuccess)} | ${rss.toFixed(1)} |`)
    log(rows.at(-1) ?? '')
  }
  const endRss = rssMib(server.pid)
  await stopChild(server.child, 15_000)
  process.stdout.write(`${rows.join('\n')}\n\n${String(calls)} calls in ${String(minutes)} min, ${String(errors)} not 2xx; ` +
    `server RSS ${startRss.toFixed(1)} MiB after start, ${endRss.toFixed(1)} MiB at the end.\n`)
}

main()
  .catch((error: unknown) => {
    log(error instanceof BenchError ? `Soak failed: ${error.message}` : String(error instanceof Error ? error.stack : error))
    process.exitCode = 1
  })
  .finally(async () => {
    await stopAllChildren()
    await database?.close()
  })
