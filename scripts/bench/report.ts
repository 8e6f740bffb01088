import type { Measurement } from './measure.js'
import { expectedAction, isBatchRun, type RunName, type ScenarioName } from './scenarios.js'

export interface RunResult {
  name: RunName
  kind: 'scenario' | 'reference'
  measurement: Measurement
  /** Peak resident memory of the process that served the run, MiB; null for the floors (no server). */
  peakRssMib: number | null
}

export interface Machine {
  cpu: string
  cores: number
  memoryGb: number
  node: string
  database: string
  /** The driver's maxPoolSize of the server and of every floor. */
  poolSize: number
  /** 1-minute load average when the bench started: other work on the machine skews every figure. */
  loadAverage: number
  /** Median findOne by _id on the seeded profiles, ms: it should stay small whatever the collection size. */
  idLookupMs: number
}

export interface Target {
  label: string
  /** null: not measured in this run. */
  pass: boolean | null
  detail: string
}

/** The built CLI's export of every seeded profile, timed from start to exit, beside a driver-only scan of the same profiles. */
export interface ExportResult {
  profiles: number
  seconds: number
  /** Peak resident memory of the CLI process, MiB. */
  peakRssMib: number | null
  scan: { profiles: number, seconds: number }
}

/** The built CLI's import of new users from an NDJSON file, timed from start to exit. */
export interface ImportResult {
  users: number
  seconds: number
  /** Peak resident memory of the CLI process, MiB. */
  peakRssMib: number | null
  /** The CLI's --json output: its counts. */
  counts: string
  /** As many new users of the same shape inserted by the driver alone, in bulk, right after: the most an import can reach. */
  insertFloor: { users: number, seconds: number }
}

export interface BenchReport {
  date: string
  command: string
  options: { durationSeconds: number, connections: number, batchConnections: number, profiles: number }
  machine: Machine
  /** How many replayed seeded bodies the server found unchanged: proof that bulk seeding matches the repository's shapes. */
  seedCheck: { sent: number, unchanged: number }
  runs: RunResult[]
  /** Null when the export was not asked for. */
  export: ExportResult | null
  /** Null when the import was not asked for. */
  import: ImportResult | null
  targets: Target[]
  notes: string[]
}

const find = (runs: RunResult[], name: RunName): Measurement | undefined => runs.find((run) => run.name === name)?.measurement
const fixed = (value: number, digits = 2): string => value.toFixed(digits)
/** Whole numbers, but one decimal below 100, where rounding would hide the ratios. */
export const rate = (value: number): string => value < 100 ? value.toFixed(1) : Math.round(value).toLocaleString('en-US')
const ms = (value: number): string => value.toFixed(value < 10 ? 2 : 1)
const mib = (value: number | null): string => value === null ? '' : `, peak RSS ${fixed(value, 0)} MiB`

/** The export's heap cap (node --max-old-space-size), far below what holding every profile would take. */
export const EXPORT_HEAP_MIB = 64
const EXPORT_TARGET = 10_000
const IMPORT_TARGET_USERS = 100_000
const IMPORT_TARGET_SECONDS = 30
const CEILING_TARGET = 4000
const PEAK_RSS_TARGET_MB = 200

/** What caps a missed ratio, from the run, its reference and the reference's name; null when the floors it needs did not run. */
type Bound = (judged: Measurement, reference: Measurement, base: RunName) => string | null

/** A run's rate against a reference's in the same run; `bound` names what caps the ratio when it is missed. */
function ratioTarget (runs: RunResult[], name: RunName, base: RunName, minimum: number, unit: string, bound?: Bound): Target {
  const label = `${name} ≥ ${minimum} × ${base} ${unit}`
  const judged = find(runs, name)
  const reference = find(runs, base)
  if (judged === undefined || reference === undefined) return { label, pass: null, detail: `not measured (needs ${name} and ${base})` }
  if (reference.rps === 0) return { label, pass: null, detail: `${base} completed no call (${reference.errors} errors)` }
  const ratio = judged.rps / reference.rps
  const pass = ratio >= minimum
  const bounded = pass ? null : bound?.(judged, reference, base) ?? null
  return { label, pass, detail: `${name} ${rate(judged.rps)} ÷ ${base} ${rate(reference.rps)} = ${fixed(ratio)}${bounded === null ? '' : `; ${bounded}`}` }
}

/** The commands each single call sends one after another (test/command-count.test.ts), each as the floor that sends its like. */
const COMMANDS = {
  update: ['merge-floor'],
  unchanged: ['merge-floor'],
  token: ['merge-floor'],
  read: ['read-floor'],
  // The merge finds no profile, then the erasure lookup, the link and the insert.
  create: ['merge-floor', 'read-floor', 'db-floor', 'db-floor'],
  // The merge finds the visitor unlisted, then the link and the listing.
  'new-device': ['merge-floor', 'db-floor', 'db-floor']
} as const satisfies Partial<Record<ScenarioName, RunName[]>>

/** 1 ÷ (Σ 1 ÷ floor) over a call's commands: docs/benchmarks.md#targets-and-what-bounds-each. */
function commandBound (runs: RunResult[], name: keyof typeof COMMANDS, judged: Measurement, reference: Measurement, base: RunName): string | null {
  const parts: RunName[] = [...COMMANDS[name]]
  const rates = parts.map((part) => find(runs, part)?.rps ?? 0)
  if (rates.some((value) => value === 0)) return null
  const bound = 1 / rates.reduce((sum, value) => sum + 1 / value, 0)
  return `command bound (${parts.join(' + ')}) ${rate(bound)}/s = ${fixed(bound / reference.rps)} × ${base}, reached ${fixed(judged.rps / bound)}`
}

/** What propagating a context alone costs: no traced ceiling can beat http-ceiling-context. */
function contextBound (runs: RunResult[]): Bound {
  const floor = find(runs, 'http-ceiling-context')
  return (_, ceiling) => floor === undefined ? null : `context bound: http-ceiling-context ${rate(floor.rps)}/s = ${fixed(floor.rps / ceiling.rps)} × http-ceiling`
}

/** Issue 18's targets, then the earlier ones that still stand (docs/benchmarks.md#targets-and-what-bounds-each). */
export function evaluateTargets (runs: RunResult[], exported: ExportResult | null, imported: ImportResult | null): Target[] {
  const bulkFloor = find(runs, 'bulk-floor')
  // The bulk floor caps batch-1000, so bulk-floor ÷ update caps batch-1000 ÷ update.
  const batchBound: Bound = (_, update) => bulkFloor === undefined ? null : `at most bulk-floor ${rate(bulkFloor.rps)} ÷ update = ${fixed(bulkFloor.rps / update.rps)}`
  const callBound = (name: keyof typeof COMMANDS): Bound => (judged, reference, base) => commandBound(runs, name, judged, reference, base)
  return [
    ...(['update', 'create', 'new-device', 'token'] as const).map((name) => ratioTarget(runs, name, 'db-floor', 0.6, 'req/s', callBound(name))),
    ratioTarget(runs, 'read', 'read-floor', 0.8, 'req/s', callBound('read')),
    ratioTarget(runs, 'batch-1000', 'update', 3, 'profiles/s', batchBound),
    ratioTarget(runs, 'batch-1000', 'bulk-floor', 0.6, 'profiles/s'),
    importTarget(imported),
    exportTarget(exported),
    ceilingTarget(runs),
    // Tracing on may cost at most 10% of the ceiling (docs/operations.md#tracing).
    ratioTarget(runs, 'http-ceiling-traced', 'http-ceiling', 0.9, 'req/s', contextBound(runs)),
    memoryTarget(runs),
    ratioTarget(runs, 'unchanged', 'db-floor', 0.8, 'req/s', callBound('unchanged')),
    latencyTarget(runs),
    errorsTarget(runs)
  ]
}

function importTarget (imported: ImportResult | null): Target {
  const label = `import of ${IMPORT_TARGET_USERS.toLocaleString('en-US')} new users < ${IMPORT_TARGET_SECONDS} s`
  if (imported === null) return { label, pass: null, detail: 'not measured (needs import)' }
  // A run of another size is judged by its rate.
  return { label, pass: imported.users / imported.seconds >= IMPORT_TARGET_USERS / IMPORT_TARGET_SECONDS, detail: importLine(imported) }
}

function exportTarget (exported: ExportResult | null): Target {
  const label = `export ≥ ${EXPORT_TARGET.toLocaleString('en-US')} profiles/s under a ${EXPORT_HEAP_MIB} MiB heap`
  if (exported === null) return { label, pass: null, detail: 'not measured (needs export)' }
  return { label, pass: exported.profiles / exported.seconds >= EXPORT_TARGET, detail: exportLine(exported) }
}

function ceilingTarget (runs: RunResult[]): Target {
  const label = `http-ceiling ≥ ${CEILING_TARGET.toLocaleString('en-US')} calls/s`
  const ceiling = find(runs, 'http-ceiling')
  if (ceiling === undefined) return { label, pass: null, detail: 'not measured (needs http-ceiling)' }
  return { label, pass: ceiling.rps >= CEILING_TARGET, detail: `${rate(ceiling.rps)} calls/s` }
}

function memoryTarget (runs: RunResult[]): Target {
  const label = `server peak RSS < ${PEAK_RSS_TARGET_MB} MB`
  const peaks = runs.filter((run) => run.kind === 'scenario').map((run) => run.peakRssMib).filter((peak) => peak !== null)
  if (peaks.length === 0) return { label, pass: null, detail: 'no scenario measured' }
  const peak = Math.max(...peaks)
  const peakMb = peak * 1024 * 1024 / 1e6
  return { label, pass: peakMb < PEAK_RSS_TARGET_MB, detail: `${fixed(peak, 0)} MiB (${fixed(peakMb, 0)} MB)` }
}

/** Single calls only: a batch call answers for its 100 or 1,000 items at once. */
function latencyTarget (runs: RunResult[]): Target {
  const label = 'p99 ≤ 3 × db-floor p99'
  const floor = find(runs, 'db-floor')
  const calls = runs.filter((run) => run.kind === 'scenario' && !isBatchRun(run.name))
  if (floor === undefined || calls.length === 0) return { label, pass: null, detail: 'not measured (needs db-floor and a scenario)' }
  return {
    label,
    pass: calls.every((run) => run.measurement.p99Ms <= 3 * floor.p99Ms),
    detail: `db-floor p99 ${ms(floor.p99Ms)} ms; ` + calls.map((run) => `${run.name} ${fixed(run.measurement.p99Ms / floor.p99Ms)}×`).join(', ')
  }
}

function errorsTarget (runs: RunResult[]): Target {
  const failures = runs.filter((run) => run.measurement.non2xx + run.measurement.errors > 0)
  return {
    label: 'every call answered 2xx',
    pass: runs.length === 0 ? null : failures.length === 0,
    detail: failures.length === 0
      ? 'no failure in any run'
      : failures.map(({ name, measurement: m }) => `${name}: ${m.non2xx} non-2xx, ${m.errors} without answer ${JSON.stringify(m.failures)}`).join('; ')
  }
}

export function importLine ({ users, seconds, peakRssMib, insertFloor }: ImportResult): string {
  const floorRate = insertFloor.users / insertFloor.seconds
  return `${users.toLocaleString('en-US')} new users in ${fixed(seconds, 1)} s: ${rate(users / seconds)} profiles/s${mib(peakRssMib)}; ` +
    `driver-only inserts ${rate(floorRate)} profiles/s (import ÷ inserts ${fixed(users / seconds / floorRate)})`
}

export function exportLine ({ profiles, seconds, peakRssMib, scan }: ExportResult): string {
  const scanRate = scan.profiles / scan.seconds
  return `${profiles.toLocaleString('en-US')} profiles in ${fixed(seconds, 1)} s: ${rate(profiles / seconds)} profiles/s${mib(peakRssMib)}; ` +
    `driver-only scan ${rate(scanRate)} profiles/s (export ÷ scan ${fixed(profiles / seconds / scanRate)})`
}

/** Where a run's answers were not the action it exists to measure. */
export function actionNotes (runs: RunResult[]): string[] {
  return runs.flatMap((run) => {
    const expected = expectedAction[run.name]
    if (expected === null) return []
    const total = Object.values(run.measurement.actions).reduce((sum, count) => sum + count, 0)
    const share = total === 0 ? 0 : (run.measurement.actions[expected] ?? 0) / total
    return share >= 0.99 ? [] : [`${run.name}: only ${fixed(share * 100, 1)}% answered "${expected}" (${JSON.stringify(run.measurement.actions)})`]
  })
}

function actionsCell (measurement: Measurement): string {
  const total = Object.values(measurement.actions).reduce((sum, count) => sum + count, 0)
  if (total === 0) return '–'
  return Object.entries(measurement.actions)
    .sort(([, a], [, b]) => b - a)
    .map(([action, count]) => `${action} ${fixed((count / total) * 100, count === total ? 0 : 1)}%`)
    .join(', ')
}

function markdownTable (runs: RunResult[]): string {
  const floor = find(runs, 'db-floor')
  const ceiling = find(runs, 'http-ceiling')
  const ratio = (value: number, base: number | undefined): string => base === undefined || base === 0 ? '–' : fixed(value / base)
  const header = [
    '| run | req/s | p50 ms | p99 ms | non-2xx | peak RSS MiB | ÷ db-floor req/s | ÷ http-ceiling req/s | p99 ÷ db-floor p99 | answers |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |'
  ]
  const rows = runs.map(({ name, kind, measurement: m, peakRssMib }) => {
    const failures = m.errors > 0 ? `${m.non2xx} (+${m.errors} errors)` : String(m.non2xx)
    return `| ${kind === 'reference' ? `*${name}*` : name} | ${rate(m.rps)} | ${ms(m.p50Ms)} | ${ms(m.p99Ms)} | ${failures} | ` +
      `${peakRssMib === null ? '–' : fixed(peakRssMib, 0)} | ${ratio(m.rps, floor?.rps)} | ${ratio(m.rps, ceiling?.rps)} | ` +
      `${ratio(m.p99Ms, floor?.p99Ms)} | ${actionsCell(m)} |`
  })
  return [...header, ...rows].join('\n')
}

function targetLines (targets: Target[]): string {
  return targets.map(({ label, pass, detail }) => `- **${pass === null ? 'N/A' : pass ? 'PASS' : 'MISS'}** ${label}: ${detail}`).join('\n')
}

/** The export and import lines, when they ran. */
function cliLines (report: BenchReport): string[] {
  return [
    ...(report.export === null ? [] : [`Export: ${exportLine(report.export)}.`, '']),
    ...(report.import === null ? [] : [`Import: ${importLine(report.import)}; ${report.import.counts}.`, ''])
  ]
}

const noteLines = (notes: string[]): string[] => notes.length === 0 ? [] : ['', ...notes.map((note) => `Note: ${note}`)]

/** What run.ts prints on stdout without --json. */
export function textReport (report: BenchReport): string {
  const { durationSeconds, connections, profiles } = report.options
  return [
    `Identify benchmark: ${durationSeconds} s per run, ${connections} connections, ${profiles.toLocaleString('en-US')} seeded profiles, ` +
      `${report.machine.database}, pool of ${report.machine.poolSize}`,
    '',
    markdownTable(report.runs),
    '',
    ...cliLines(report),
    targetLines(report.targets),
    ...noteLines(report.notes),
    '',
    'How to read it: docs/benchmarks.md',
    ''
  ].join('\n')
}

/** The lines around the part of docs/benchmarks.md that `--write-docs` rewrites; the prose outside them is written by hand. */
export const GENERATED_START = '<!-- bench:start (written by `npm run bench -- --write-docs`: change scripts/bench/report.ts, not the lines up to bench:end) -->'
export const GENERATED_END = '<!-- bench:end -->'

/** The generated part of docs/benchmarks.md, markers included; its links lead to the prose outside the markers. */
export function generatedDocs (report: BenchReport, chartFile: string): string {
  const { machine, options } = report
  return [
    GENERATED_START,
    '',
    `Last full run: ${report.date}, with \`${report.command}\`.`,
    '',
    '| [setup](#setup) | |',
    '| --- | --- |',
    `| CPU | ${machine.cpu}, ${machine.cores} cores |`,
    `| memory | ${fixed(machine.memoryGb, 1)} GB |`,
    `| Node.js | ${machine.node} |`,
    `| database | ${machine.database} |`,
    `| pool (\`maxPoolSize\`) | ${machine.poolSize} |`,
    `| load | ${options.connections} connections, ${options.durationSeconds} s per run, ${options.profiles.toLocaleString('en-US')} seeded profiles |`,
    `| batch runs | ${options.batchConnections} connections |`,
    `| load average at start | ${fixed(machine.loadAverage)} |`,
    `| findOne by \`_id\` | ${ms(machine.idLookupMs)} ms |`,
    '',
    `![Requests per second per run](${chartFile})`,
    '',
    markdownTable(report.runs),
    '',
    'See [what each row measures](#what-each-row-measures) and [the columns](#columns).',
    '',
    ...cliLines(report),
    `[Seed check](#seed-check): ${report.seedCheck.unchanged} of ${report.seedCheck.sent} answered \`unchanged\`.`,
    '',
    '### Targets',
    '',
    'See [how each is judged and bounded](#targets-and-what-bounds-each).',
    '',
    targetLines(report.targets),
    ...noteLines(report.notes),
    '',
    GENERATED_END
  ].join('\n')
}
