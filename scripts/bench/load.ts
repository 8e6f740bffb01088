import autocannon from 'autocannon'
import { LatencyRecorder, increment, noteFailure, receiveInput, replyToParent, type Measurement } from './measure.js'
import { batchItems, isBatchRun, readPath, scenarioBody, type BatchScenarioName, type Layout, type ScenarioName } from './scenarios.js'

/**
 * One HTTP load run, in a process of its own (forked by run.ts) so that the
 * load generator's CPU is not the orchestrator's. Input: a LoadInput, output:
 * one Measurement, both over IPC.
 */
export interface LoadInput {
  baseUrl: string
  /** Path and query, e.g. /api/v1/identify?websiteId=… */
  path: string
  authorization: string
  /** Whose bodies to send. */
  scenario: ScenarioName | BatchScenarioName
  layout: Layout
  connections: number
  durationSeconds: number
  /** Where the body counter starts, so that later runs of one scenario send new bodies (the soak). */
  firstCall?: number
}

const actionPattern = /"action":"([a-z]+)"/

/** What a successful answer did: identify's action, or `profile` for a read. */

/** A batch answer's counts, added to `actions`: what its items did. */
function countBatch (actions: Record<string, number>, body: string): void {
  const { data } = JSON.parse(body) as { data: { counts: Record<string, number> } }
  for (const [action, count] of Object.entries(data.counts)) if (count > 0) actions[action] = (actions[action] ?? 0) + count
}

/** The message of an error answer (docs/api.md: every error carries one). */
const messageOf = (body: string): string => /"message":"((?:[^"\\]|\\.)*)"/.exec(body)?.[1] ?? body

const answerOf = (body: string): string => actionPattern.exec(body)?.[1] ?? (body.includes('"profile":{') ? 'profile' : 'unknown')

/**
 * A batch run: `connections` loops that each send one batch after another
 * until the duration ends, every call started counted to its end (as the
 * bulk floor counts its rounds). A batch takes seconds, so autocannon, which
 * drops the calls in flight when its duration ends, would undercount it.
 */
async function batchLoops (input: LoadInput, scenario: BatchScenarioName): Promise<Measurement> {
  let next = input.firstCall ?? 0
  const actions: Record<string, number> = {}
  const statusCodes: Record<string, number> = {}
  const failures: Record<string, string> = {}
  const latencies = new LatencyRecorder()
  let errors = 0
  const started = performance.now()
  const deadline = started + input.durationSeconds * 1000
  const loop = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const body = JSON.stringify({ items: batchItems(scenario, input.layout, next++) })
      const begin = performance.now()
      try {
        const response = await fetch(`${input.baseUrl}${input.path}`, { method: 'POST', headers: { authorization: input.authorization, 'content-type': 'application/json' }, body })
        const text = await response.text()
        increment(statusCodes, String(response.status))
        if (response.ok) countBatch(actions, text)
        else noteFailure(failures, String(response.status), messageOf(text))
      } catch (error) {
        errors++
        noteFailure(failures, 'error', error instanceof Error ? error.message : String(error))
      }
      latencies.record(performance.now() - begin)
    }
  }
  await Promise.all(Array.from({ length: input.connections }, loop))
  const durationSeconds = (performance.now() - started) / 1000
  const successes = Object.entries(statusCodes).filter(([code]) => code.startsWith('2')).reduce((sum, [, count]) => sum + count, 0)
  const calls = Object.values(statusCodes).reduce((sum, count) => sum + count, 0)
  return { calls: calls + errors, durationSeconds, rps: successes / durationSeconds, ...latencies.percentiles(), non2xx: calls - successes, errors, statusCodes, failures, actions }
}

async function main (): Promise<void> {
  const input = await receiveInput<LoadInput>()
  const { scenario } = input
  if (isBatchRun(scenario)) {
    await replyToParent(await batchLoops(input, scenario))
    return
  }
  let next = input.firstCall ?? 0
  const actions: Record<string, number> = {}
  const failures: Record<string, string> = {}
  const latencies = new LatencyRecorder()

  const instance = autocannon({
    url: input.baseUrl,
    connections: input.connections,
    duration: input.durationSeconds,
    // Long enough for a slow database: a timed-out call is abandoned by autocannon but still runs on the server.
    timeout: 30,
    method: scenario === 'read' ? 'GET' : 'POST',
    headers: { authorization: input.authorization, ...(scenario === 'read' ? {} : { 'content-type': 'application/json' }) },
    requests: [{
      path: input.path,
      // A new body (or profile to read) per call from one counter shared by every connection: deterministic, never cached.
      setupRequest: (request) => scenario === 'read'
        ? { ...request, path: readPath(input.layout, next++) }
        : { ...request, body: JSON.stringify(scenarioBody(scenario, input.layout, next++)) },
      onResponse: (status, body) => {
        if (status >= 200 && status < 300) increment(actions, answerOf(body))
        else noteFailure(failures, String(status), messageOf(body))
      }
    }]
  })
  instance.on('response', (_client, _status, _bytes, responseTime) => { latencies.record(responseTime) })
  instance.on('reqError', (error) => { noteFailure(failures, 'error', error.message) })
  const result = await instance

  const statusCodes: Record<string, number> = {}
  let successes = 0
  for (const [code, { count }] of Object.entries(result.statusCodeStats)) {
    statusCodes[code] = count
    if (code.startsWith('2')) successes += count
  }
  const measurement: Measurement = {
    calls: Object.values(statusCodes).reduce((sum, count) => sum + count, 0),
    durationSeconds: result.duration,
    rps: successes / result.duration,
    ...latencies.percentiles(),
    non2xx: result.non2xx,
    errors: result.errors,
    statusCodes,
    failures,
    actions
  }
  await replyToParent(measurement)
}

main().catch((error: unknown) => {
  console.error('bench load process failed:', error)
  process.exit(1)
})
