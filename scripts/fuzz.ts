import { parseArgs } from 'node:util'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { startDatabase, withDatabaseName } from '../tools/local-database.js'
import { fuzzAccountApi, fuzzIdentify, shortfalls } from '../tools/schemathesis.js'

/**
 * `npm run fuzz`: Schemathesis against the service on the local database, with
 * a df_ key and with a dft_ token; installs Schemathesis when it is missing.
 * Exits 1 when it finds a failure or its calls did not reach the body.
 */
const { values } = parseArgs({
  options: {
    'max-examples': { type: 'string', default: '500' },
    seed: { type: 'string', default: '20261128' }
  }
})
const options = { maxExamples: Number(values['max-examples']), seed: Number(values.seed) }

const database = await startDatabase()
const app = await buildApp(loadConfig({}, {
  NODE_ENV: 'production',
  LOG_LEVEL: 'warn',
  MONGO_URL: withDatabaseName(database.url, `fuzz_${String(Date.now())}`),
  // The fuzzer sends thousands of calls and wrong credentials on purpose.
  RATE_LIMIT_MAX: 1_000_000,
  AUTH_FAILURE_MAX: 1_000_000,
  MAX_TOKENS_PER_ACCOUNT: 10_000,
  // Load shedding answers 503 when the machine is busy, which the fuzzer would report as a failure.
  PRESSURE_MAX_EVENT_LOOP_DELAY_MS: 0
}))
let status = 1
try {
  const passes = await fuzzIdentify(app, options)
  const problems = passes.flatMap((pass) => shortfalls(pass, options))
  for (const pass of passes) {
    process.stdout.write(`${pass.credential}: exit code ${String(pass.exitCode)}, identify answers ${JSON.stringify(pass.statuses)}, ${String(pass.profiles)} profiles, profile reads answered 200 ${JSON.stringify(pass.profileReads)}\n`)
  }
  const accountApiExit = await fuzzAccountApi(app, options)
  process.stdout.write(`Account API with an owner token: exit code ${String(accountApiExit)}\n`)
  for (const problem of problems) process.stderr.write(`${problem}\n`)
  status = passes.every((pass) => pass.exitCode === 0) && accountApiExit === 0 && problems.length === 0 ? 0 : 1
} finally {
  // Leaves nothing behind on a server given by MONGO_URL.
  await app.mongo.db.dropDatabase()
  await app.close()
  await database.close()
}
process.exit(status)
