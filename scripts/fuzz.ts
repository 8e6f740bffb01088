import { parseArgs } from 'node:util'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { startDatabase, withDatabaseName } from './local-database.js'
import { runSchemathesis } from './schemathesis.js'

/** `npm run fuzz`: Schemathesis against the service on the local database; exits with its status. */
const { values } = parseArgs({
  options: {
    'max-examples': { type: 'string', default: '500' },
    seed: { type: 'string', default: '20261128' }
  }
})

const database = await startDatabase()
const app = await buildApp(loadConfig({}, {
  NODE_ENV: 'production',
  LOG_LEVEL: 'warn',
  MONGO_URL: withDatabaseName(database.url, `fuzz_${String(Date.now())}`),
  // The fuzzer sends thousands of calls and wrong credentials on purpose.
  RATE_LIMIT_MAX: 1_000_000,
  AUTH_FAILURE_MAX: 1_000_000
}))
let status = 1
try {
  const { websites, credentials } = app.repositories
  const accountId = await websites.createAccount('Fuzzing')
  const websiteId = await websites.createWebsite({ accountId, domain: 'fuzz.example', cookieless: false })
  const { key } = await credentials.createWebsiteKey({ websiteId, name: 'fuzz' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  status = await runSchemathesis(base, key, { maxExamples: Number(values['max-examples']), seed: Number(values.seed) })
} finally {
  // Leaves nothing behind on a server given by MONGO_URL.
  await app.mongo.db.dropDatabase()
  await app.close()
  await database.close()
}
process.exit(status)
