import { randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'
import { IdentifyClient, type IdentifyBody } from '../../clients/node/src/index.js'
import { startDatabase, withDatabaseName, type LocalDatabase } from '../../tools/local-database.js'
import { startBuiltServer, stopAllChildren } from './processes.js'
import { rate } from './report.js'
import { seedDatabase } from './seed.js'

/**
 * `npm run bench:client`: the Node client's throughput against one server
 * (node dist/server.js on the bench's database), side by side in one run:
 * the same number of new users sent by identify() from concurrent loops, then
 * by enqueue() and one flush(). Reported in calls per second.
 */

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '16' }
  }
})
const calls = Number(values.calls)
const concurrency = Number(values.concurrency)

const body = (run: string, i: number): IdentifyBody =>
  ({ user_id: `${run}-${String(i)}`, datafast_visitor_id: randomUUID(), plan: 'pro', seats: i % 50, signed_up: true })

async function timeIdentify (client: IdentifyClient): Promise<number> {
  let next = 0
  const started = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < calls) await client.identify(body('single', next++))
  }))
  return calls / ((performance.now() - started) / 1000)
}

async function timeEnqueue (client: IdentifyClient): Promise<number> {
  const started = performance.now()
  for (let i = 0; i < calls; i++) {
    if (!client.enqueue(body('queued', i))) throw new Error(`enqueue dropped call ${String(i)}`)
  }
  await client.flush()
  return calls / ((performance.now() - started) / 1000)
}

async function main (): Promise<void> {
  let database: LocalDatabase | undefined
  try {
    database = await startDatabase({ log: console.log })
    const mongoUrl = withDatabaseName(database.url, 'bench_client')
    const { key } = await seedDatabase(mongoUrl, 0, console.log)
    const server = await startBuiltServer(mongoUrl)
    const failures: string[] = []
    const client = new IdentifyClient({ url: server.baseUrl, key, maxQueueSize: calls, onError: (error) => { failures.push(error.message) } })
    console.log(`${calls.toLocaleString('en-US')} new users each way; identify() from ${String(concurrency)} loops, enqueue() with the default flushAt`)
    const single = await timeIdentify(client)
    console.log(`  identify(): ${rate(single)} calls/s`)
    const queued = await timeEnqueue(client)
    console.log(`  enqueue() + flush(): ${rate(queued)} calls/s (${(queued / single).toFixed(2)} × identify())`)
    await client.shutdown()
    if (failures.length > 0 || client.dropped > 0) throw new Error(`${String(failures.length)} failures, ${String(client.dropped)} dropped: ${failures.slice(0, 3).join('; ')}`)
  } finally {
    await stopAllChildren()
    await database?.close()
  }
}

main().catch((error: unknown) => {
  console.error('client bench failed:', error)
  process.exitCode = 1
})
