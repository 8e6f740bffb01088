import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import { redactConnectionString } from 'mongodb-connection-string-url'
import { startDatabase, withDatabaseName, type LocalDatabase } from '../../tools/local-database.js'
import { barChart } from './chart.js'
import type { DbFloorInput } from './db-floor.js'
import type { LoadInput } from './load.js'
import { increment, type Measurement } from './measure.js'
import { startOtlpSink } from './otlp-sink.js'
import {
  BenchError, PeakMemory, drain, freePort, root, runWorker, serverEnv, startBuiltServer, startServer, stopAllChildren, stopChild, type RunningServer
} from './processes.js'
import {
  actionNotes, EXPORT_HEAP_MIB, evaluateTargets, exportLine, generatedDocs, GENERATED_END, GENERATED_START, importLine, rate, textReport,
  type BenchReport, type ExportResult, type ImportResult, type Machine, type RunResult
} from './report.js'
import { BATCH_RUNS, BATCH_SIZE, FLOOR_KINDS, REFERENCES, isBatchRun, isFloor, SCENARIOS, layoutFor, scenarioBody, seedMetadata, seedVisitorId, type BatchScenarioName, type Layout, type RunName, type ScenarioName } from './scenarios.js'
import { describeDatabase, identifyTarget, seedDatabase, timeBulkInserts, timeIdLookups, timeScan, type DatabaseDescription, type Seeded } from './seed.js'

/**
 * `npm run bench`: seed, build, start the server, drive every scenario and
 * reference point, print the table (and rewrite docs/benchmarks.md with
 * --write-docs). Progress goes to stderr; stdout carries only the report.
 */
/** Not a load run: the built CLI exports every seeded profile once, timed. */
const EXPORT = 'export'
/** Not a load run: the built CLI imports --import-users new users from an NDJSON file, timed (after every other run). */
const IMPORT = 'import'
/** The seeded profiles and imported users of a full run: the sizes issue 18's targets are set at. */
const FULL_SIZE = 100_000

const usage = `Usage: npm run bench -- [options]
  --duration <s>      seconds per scenario and reference point (default 15)
  --connections <n>   concurrent connections / loops (default 16)
  --profiles <n>      seeded profiles (default ${FULL_SIZE})
  --scenarios <list>  comma-separated subset of: ${[...SCENARIOS, ...REFERENCES, ...BATCH_RUNS, EXPORT, IMPORT].join(', ')}
  --batch-connections <n>  concurrent calls / loops of batch-100, batch-1000 and bulk-floor (default 2):
                      a backfill sends a few batches at once
  --import-users <n>  new users the import run loads (default ${FULL_SIZE})
  --json              print the report as JSON instead of a Markdown table
  --write-docs        rewrite the figures in docs/benchmarks.md and docs/benchmarks.svg
                      (full runs only: every run, at least ${FULL_SIZE} profiles and import users)
  --cpu-prof          write V8 CPU profiles of both servers to .cache/bench-profiles/ (open them in Chrome DevTools)`

const log = (line: string): void => { process.stderr.write(`${line}\n`) }

interface Options {
  durationSeconds: number
  connections: number
  batchConnections: number
  profiles: number
  runs: RunName[]
  exportRun: boolean
  importRun: boolean
  importUsers: number
  json: boolean
  writeDocs: boolean
  cpuProf: boolean
}

function parseOptions (): Options {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '15' },
      connections: { type: 'string', default: '16' },
      'batch-connections': { type: 'string', default: '2' },
      profiles: { type: 'string', default: String(FULL_SIZE) },
      'import-users': { type: 'string', default: String(FULL_SIZE) },
      scenarios: { type: 'string' },
      json: { type: 'boolean', default: false },
      'write-docs': { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  if (values.help) {
    console.log(usage)
    process.exit(0)
  }
  const positive = (name: string, text: string, minimum: number): number => {
    const value = Number(text)
    if (!Number.isInteger(value) || value < minimum) throw new BenchError(`--${name} must be a whole number of at least ${minimum}\n${usage}`)
    return value
  }
  const all: RunName[] = [...SCENARIOS, ...REFERENCES, ...BATCH_RUNS]
  const asked = values.scenarios?.split(',').map((name) => name.trim()).filter((name) => name !== '') ?? [...all, EXPORT, IMPORT]
  const unknown = asked.filter((name) => !all.includes(name as RunName) && name !== EXPORT && name !== IMPORT)
  if (unknown.length > 0) throw new BenchError(`unknown scenario ${unknown.join(', ')}\n${usage}`)
  return {
    durationSeconds: positive('duration', values.duration, 1),
    connections: positive('connections', values.connections, 1),
    batchConnections: positive('batch-connections', values['batch-connections'], 1),
    profiles: positive('profiles', values.profiles, 100),
    // Always in the documented order, whatever order they were asked in.
    runs: all.filter((name) => asked.includes(name)),
    exportRun: asked.includes(EXPORT),
    importRun: asked.includes(IMPORT),
    importUsers: positive('import-users', values['import-users'], 1),
    json: values.json,
    writeDocs: values['write-docs'],
    cpuProf: values['cpu-prof']
  }
}

function machine ({ name, poolSize }: DatabaseDescription, loadAverage: number, idLookupMs: number): Machine {
  const cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpus()[0]?.model ?? 'unknown'
  return { cpu, cores: cpus().length, memoryGb: totalmem() / 1e9, node: process.version, database: name, poolSize, loadAverage, idLookupMs }
}

/**
 * Replays the exact seeded body of every user of the `unchanged` pool: it
 * warms the server up, and every answer must be `unchanged`, which shows the
 * bulk-seeded documents are the ones the repository would have written.
 */
async function preIdentify (server: RunningServer, seeded: Seeded, layout: Layout, connections: number): Promise<{ sent: number, unchanged: number }> {
  const actions: Record<string, number> = {}
  let next = 0
  const worker = async (): Promise<void> => {
    for (let k = next++; k < layout.poolSize; k = next++) {
      let answer: { data?: { action?: string } }
      let response: Response
      try {
        response = await fetch(`${server.baseUrl}/api/v1/identify`, {
          method: 'POST',
          headers: { authorization: `Bearer ${seeded.key}`, 'content-type': 'application/json' },
          body: JSON.stringify(scenarioBody('unchanged', layout, k)),
          signal: AbortSignal.timeout(60_000)
        })
        answer = await response.json() as typeof answer
      } catch (error) {
        throw new BenchError(`the server did not answer a replayed seeded body: ${error instanceof Error ? error.message : String(error)}`)
      }
      increment(actions, response.ok ? answer.data?.action ?? 'unknown' : `HTTP ${response.status}`)
    }
  }
  await Promise.all(Array.from({ length: connections }, worker))
  const unchanged = actions.unchanged ?? 0
  if (unchanged !== layout.poolSize) {
    log(`  WARNING: only ${unchanged} of ${layout.poolSize} seeded bodies came back unchanged (${JSON.stringify(actions)}): the seeded documents differ from what the server writes`)
  }
  return { sent: layout.poolSize, unchanged }
}

interface Context {
  options: Options
  /** Node flags that make a server write a CPU profile on exit (--cpu-prof), or none. */
  profiling: string[]
  seeded: Seeded
  layout: Layout
  mongoUrl: string
}

/** One autocannon run against a serving process, its peak memory sampled meanwhile. */
async function httpRun (context: Context, server: RunningServer, scenario: ScenarioName | BatchScenarioName, credential: 'key' | 'token' | 'read' | 'batch'): Promise<{ measurement: Measurement, peakRssMib: number | null }> {
  const { seeded, layout } = context
  const input: LoadInput = {
    baseUrl: server.baseUrl,
    ...identifyTarget(seeded, credential),
    scenario,
    layout,
    ...loadOf(context.options, scenario)
  }
  const memory = new PeakMemory(server.pid)
  memory.start()
  try {
    const measurement = await runWorker<Measurement>('load.ts', input)
    return { measurement, peakRssMib: memory.stop() }
  } finally {
    memory.stop()
  }
}

/** Batch runs take BATCH_MIN_SECONDS at least: a call of 1,000 items takes seconds, and a 15 s run would count a handful. */
const BATCH_MIN_SECONDS = 30

/** The concurrency and duration of a run: batch runs and their floor at --batch-connections. */
function loadOf (options: Options, name: RunName): { connections: number, durationSeconds: number } {
  if (!isBatchRun(name)) return { connections: options.connections, durationSeconds: options.durationSeconds }
  return { connections: options.batchConnections, durationSeconds: Math.max(options.durationSeconds, BATCH_MIN_SECONDS) }
}

async function measure (context: Context, server: RunningServer, name: RunName): Promise<RunResult> {
  const { options, layout, mongoUrl } = context
  if (isFloor(name)) {
    const input: DbFloorInput = { kind: FLOOR_KINDS[name], mongoUrl, layout, ...loadOf(options, name) }
    return { name, kind: 'reference', measurement: await runWorker<Measurement>('db-floor.ts', input), peakRssMib: null }
  }
  if (name === 'http-ceiling') return await ceilingRun(context, name, [], {})
  if (name === 'http-ceiling-context') return await ceilingRun(context, name, ['--import', './scripts/bench/context-preload.ts'], {})
  if (name === 'http-ceiling-traced') return await measureTracedCeiling(context)
  if (name === 'batch-100' || name === 'batch-1000') {
    const result = await httpRun(context, server, name, 'batch')
    // Profiles per second, as the bulk floor counts: each call carries BATCH_SIZE of them.
    result.measurement.rps *= BATCH_SIZE[name]
    await drain(server)
    return { name, kind: 'scenario', ...result }
  }
  const result = await httpRun(context, server, name, name === 'token' ? 'token' : name === 'read' ? 'read' : 'key')
  const seconds = await drain(server)
  if (seconds > 1) log(`  (the server took ${seconds.toFixed(1)} s to answer /readyz after the run)`)
  return { name, kind: 'scenario', ...result }
}

/** The ceiling server (scripts/bench/ceiling-server.ts) with these preloads and settings, driven as the update scenario is. */
async function ceilingRun (context: Context, name: RunName, preload: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  const args = [...context.profiling, '--import', 'tsx', ...preload, 'scripts/bench/ceiling-server.ts']
  const ceiling = await startServer(`${name} server`, args, { ...serverEnv(await freePort(), context.mongoUrl), ...env })
  try {
    return { name, kind: 'reference', ...await httpRun(context, ceiling, 'update', 'key') }
  } finally {
    await stopChild(ceiling.child)
  }
}

/**
 * The ceiling server started as npm start starts a traced server (tracing
 * loaded by --import before the app), every span exported over OTLP/HTTP to
 * a local sink that drops it.
 */
async function measureTracedCeiling (context: Context): Promise<RunResult> {
  const sink = await startOtlpSink()
  try {
    const result = await ceilingRun(context, 'http-ceiling-traced', ['--import', './src/tracing/index.ts'], { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url })
    const { requests, bytes } = sink.received()
    if (requests === 0) throw new BenchError('the traced ceiling server exported no span: tracing did not start')
    log(`  (the traced ceiling exported ${(bytes / 1e6).toFixed(1)} MB of spans in ${requests} OTLP requests)`)
    return result
  } finally {
    await sink.close()
  }
}

/**
 * Runs the built CLI's export of the website to a sink that only counts the
 * lines, timing the whole process (start-up included) and sampling its
 * memory: the figure an operator gets. Its heap is capped at EXPORT_HEAP_MIB.
 */
async function measureExport (websiteId: string, mongoUrl: string): Promise<ExportResult> {
  const started = performance.now()
  const child = spawn(process.execPath, [`--max-old-space-size=${EXPORT_HEAP_MIB}`, 'dist/cli/index.js', 'profiles', 'export', '--website', websiteId], {
    cwd: root,
    env: { ...serverEnv(0, mongoUrl), LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const memory = new PeakMemory(child.pid ?? 0)
  memory.start()
  let profiles = 0
  let errors = ''
  child.stdout.on('data', (chunk: Buffer) => { for (const byte of chunk) if (byte === 10) profiles++ })
  child.stderr.on('data', (chunk: Buffer) => { errors += chunk.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  const seconds = (performance.now() - started) / 1000
  const peakRssMib = memory.stop()
  if (code !== 0) throw new BenchError(`the export failed (exit code ${String(code)}): ${errors.trim()}`)
  return { profiles, seconds, peakRssMib, scan: await timeScan(mongoUrl, websiteId) }
}

/** The seed number of the import's first user: past the seeded users and the ones the scenarios create. */
const importFirstSeed = (profiles: number): number => profiles * 2

/** One line a user, as an operator's export from another system would hold them: new users with 6 to 8 fields. */
function writeImportFile (path: string, first: number, users: number): void {
  const lines: string[] = []
  for (let i = 0; i < users; i++) {
    const n = first + i
    lines.push(JSON.stringify({ user_id: `import-user-${i}`, datafast_visitor_id: seedVisitorId(n), ...seedMetadata(n) }))
  }
  writeFileSync(path, `${lines.join('\n')}\n`)
}

/** Runs the built CLI's import of `users` new users, timing the whole process (start-up included) and sampling its memory. */
async function measureImport (websiteId: string, mongoUrl: string, profiles: number, users: number): Promise<Omit<ImportResult, 'insertFloor'>> {
  const path = join(root, '.cache', 'bench-import.ndjson')
  mkdirSync(dirname(path), { recursive: true })
  writeImportFile(path, importFirstSeed(profiles), users)
  const started = performance.now()
  const child = spawn(process.execPath, ['dist/cli/index.js', '--json', 'profiles', 'import', '--website', websiteId, path], {
    cwd: root,
    env: { ...serverEnv(0, mongoUrl), LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const memory = new PeakMemory(child.pid ?? 0)
  memory.start()
  let output = ''
  let errors = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { errors += chunk.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  const seconds = (performance.now() - started) / 1000
  const peakRssMib = memory.stop()
  if (code !== 0) throw new BenchError(`the import failed (exit code ${String(code)}): ${errors.trim().slice(-2000)}`)
  return { users, seconds, peakRssMib, counts: output.trim() }
}

function summary ({ name, measurement: m, peakRssMib }: RunResult): string {
  const memory = peakRssMib === null ? '' : `, peak RSS ${peakRssMib.toFixed(0)} MiB`
  return `  ${name}: ${rate(m.rps)} req/s, p50 ${m.p50Ms.toFixed(2)} ms, p99 ${m.p99Ms.toFixed(2)} ms, ${m.non2xx} non-2xx, ${m.errors} errors${memory}`
}

/** Rewrites the chart and the generated part of docs/benchmarks.md; the prose around it stays as written. */
async function writeDocs (report: BenchReport): Promise<void> {
  const docs = join(root, 'docs', 'benchmarks.md')
  const text = readFileSync(docs, 'utf8')
  const start = text.indexOf(GENERATED_START)
  const end = text.indexOf(GENERATED_END)
  if (start < 0 || end < start) throw new BenchError(`docs/benchmarks.md has lost its markers; put these two lines back where the figures go:\n${GENERATED_START}\n${GENERATED_END}`)
  const bars = report.runs.map((run) => ({ label: run.name, value: run.measurement.rps, reference: run.kind === 'reference' }))
  const title = `Requests per second (${report.options.connections} connections, ${report.options.durationSeconds} s each; higher is better)`
  writeFileSync(join(root, 'docs', 'benchmarks.svg'), barChart(title, bars))
  writeFileSync(docs, text.slice(0, start) + generatedDocs(report, 'benchmarks.svg') + text.slice(end + GENERATED_END.length))
  log('Wrote docs/benchmarks.md and docs/benchmarks.svg')
}

let database: LocalDatabase | null = null
let cleaning: Promise<void> | null = null
let interrupted = false

/** Stops whatever is still running; safe to call twice (Ctrl-C during cleanup). */
async function cleanup (): Promise<void> {
  cleaning ??= (async () => {
    await stopAllChildren()
    await database?.close()
  })()
  await cleaning
}

async function main (): Promise<void> {
  const options = parseOptions()
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`
  const loadAverage = loadavg()[0] ?? 0
  const eta = options.runs.reduce((sum, name) => sum + loadOf(options, name).durationSeconds + 3, 0)
  log(`Benchmark: ${options.runs.join(', ')}; ${options.durationSeconds} s each at ${options.connections} connections (about ${eta} s of load after seeding)`)
  if (loadAverage > 0.5) log(`  note: the machine is already busy (load average ${loadAverage.toFixed(2)}); figures will be noisy`)

  log('Starting the database...')
  database = await startDatabase({ log })
  const mongoUrl = withDatabaseName(database.url, 'bench')
  log(`Seeding ${options.profiles.toLocaleString('en-US')} profiles into ${redactConnectionString(mongoUrl)} ...`)
  const seeded = await seedDatabase(mongoUrl, options.profiles, log).catch((error: unknown) => {
    throw new BenchError(`seeding the database at ${redactConnectionString(mongoUrl)} failed: ${error instanceof Error ? error.message : String(error)}`)
  })
  const description = await describeDatabase(mongoUrl, database.embedded)
  log(`  ${description.name}; the server and every floor connect with a pool of ${description.poolSize}`)

  const idLookupMs = await timeIdLookups(mongoUrl, seeded.websiteId, options.profiles)
  if (idLookupMs > 20) log(`  WARNING: a findOne by _id takes ${idLookupMs.toFixed(0)} ms here: the machine is busy, or the database does not use the _id index`)
  log('Building the server (npm run build) and starting node dist/server.js ...')
  // The profile is written when the server exits, which it does gracefully on the SIGTERM at the end.
  const profiling = options.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${join(root, '.cache', 'bench-profiles')}`] : []
  const server = await startBuiltServer(mongoUrl, profiling)

  const layout = layoutFor(seeded.websiteId, options.profiles)
  log(`Replaying ${layout.poolSize} seeded bodies (warm-up and seed check)...`)
  const seedCheck = await preIdentify(server, seeded, layout, options.connections)

  // Before the scenarios, so that it exports exactly the seeded profiles.
  let exported: ExportResult | null = null
  if (options.exportRun) {
    log(`Exporting the ${options.profiles.toLocaleString('en-US')} profiles with node dist/cli/index.js profiles export...`)
    exported = await measureExport(seeded.websiteId, mongoUrl)
    log(`  export: ${exportLine(exported)}`)
  }

  const context: Context = { options, profiling, seeded, layout, mongoUrl }
  const runs: RunResult[] = []
  for (const name of options.runs) {
    log(`Running ${name} for ${loadOf(options, name).durationSeconds} s...`)
    const result = await measure(context, server, name)
    log(summary(result))
    runs.push(result)
  }
  let imported: ImportResult | null = null
  if (options.importRun) {
    log(`Importing ${options.importUsers.toLocaleString('en-US')} new users with node dist/cli/index.js profiles import...`)
    const cli = await measureImport(seeded.websiteId, mongoUrl, options.profiles, options.importUsers)
    log(`  import: ${cli.users.toLocaleString('en-US')} new users in ${cli.seconds.toFixed(1)} s; inserting as many from the driver alone...`)
    imported = { ...cli, insertFloor: await timeBulkInserts(mongoUrl, seeded.websiteId, importFirstSeed(options.profiles) + options.importUsers, options.importUsers) }
    log(`  import: ${importLine(imported)}`)
  }
  await stopChild(server.child, 15_000)
  if (options.cpuProf) log(`CPU profiles of the server (and of the ceiling server) written to ${join(root, '.cache', 'bench-profiles')}/`)

  const report: BenchReport = {
    date: new Date().toISOString(),
    command,
    options: { durationSeconds: options.durationSeconds, connections: options.connections, batchConnections: options.batchConnections, profiles: options.profiles },
    machine: machine(description, loadAverage, idLookupMs),
    seedCheck,
    runs,
    export: exported,
    import: imported,
    targets: evaluateTargets(runs, exported, imported),
    notes: actionNotes(runs)
  }
  process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : textReport(report))

  if (options.writeDocs) {
    const everyRun = [...SCENARIOS, ...REFERENCES, ...BATCH_RUNS].every((name) => options.runs.includes(name)) && options.exportRun && options.importRun
    if (everyRun && options.profiles >= FULL_SIZE && options.importUsers >= FULL_SIZE) await writeDocs(report)
    else log(`Not writing docs/benchmarks.md: it shows full runs only (no --scenarios, at least ${FULL_SIZE} profiles and import users)`)
  }
}

// `on`, not `once`: Ctrl-C reaches this process twice (from the terminal and relayed by tsx), and
// tsx exits at once on a signal nobody listens to, which would cut the cleanup short.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return
    interrupted = true
    log(`\n${signal}: stopping the server, the load processes and the database...`)
    void cleanup().finally(() => process.exit(130))
  })
}

main()
  .then(async () => { await cleanup() })
  .catch(async (error: unknown) => {
    if (interrupted) return
    log(error instanceof BenchError ? `\nBenchmark failed: ${error.message}` : `\nBenchmark failed with an unexpected error:\n${error instanceof Error ? error.stack ?? error.message : String(error)}`)
    await cleanup()
    // Exit now: a failure may have left a timer or a socket that would keep the process alive.
    process.exit(1)
  })
