import { randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import closeWithGrace from 'close-with-grace'
import { buildApp, type App } from '../src/app.js'
import { ConfigError, loadConfig } from '../src/config.js'
import { hashSecret } from '../src/domain/credentials.js'
import { startDatabase, withDatabaseName } from './local-database.js'

/**
 * `npm run dev`: the service on the local database (FerretDB under .data/,
 * or MONGO_URL), with a demo website and key made on first start.
 */
const dataDir = join(process.cwd(), '.data')
const demoFile = join(dataDir, 'demo.json')

interface Demo {
  websiteId: string
  key: string
}

/** The demo key is kept in plain text under .data/ so that every start can print it: development only. */
async function ensureDemo (app: App): Promise<Demo> {
  if (existsSync(demoFile)) {
    const demo = JSON.parse(readFileSync(demoFile, 'utf8')) as Demo
    const key = await app.repositories.credentials.findWebsiteKey(hashSecret(demo.key))
    if (key !== null && !key.revoked) return demo
  }
  const { websites, credentials } = app.repositories
  const accountId = await websites.createAccount('Demo account')
  const websiteId = await websites.createWebsite({ accountId, domain: 'localhost', cookieless: false })
  const { key } = await credentials.createWebsiteKey({ websiteId, name: 'demo' })
  const demo = { websiteId, key }
  writeFileSync(demoFile, `${JSON.stringify(demo, null, 2)}\n`, { mode: 0o600 })
  return demo
}

async function main (): Promise<void> {
  const config = loadConfig({ NODE_ENV: 'development', ...process.env })
  mkdirSync(dataDir, { recursive: true })
  const database = await startDatabase({ dataDir: join(dataDir, 'ferretdb') })
  const mongoUrl = database.embedded ? withDatabaseName(database.url, 'identify') : database.url
  const app = await buildApp({ ...config, MONGO_URL: mongoUrl })
  closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS }, async () => {
    await app.close()
    await database.close()
  })
  const demo = await ensureDemo(app)
  await app.listen({ host: config.HOST, port: config.PORT })

  const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? '127.0.0.1' : config.HOST
  const base = `http://${host.includes(':') ? `[${host}]` : host}:${String(config.PORT)}`
  const body = JSON.stringify({ user_id: 'user_123', datafast_visitor_id: randomUUID(), name: 'Ada Lovelace', plan: 'pro' })
  console.log([
    '',
    `Identify service: ${base}`,
    `Database: ${database.embedded ? `local FerretDB, data in ${join(dataDir, 'ferretdb')}` : 'MONGO_URL'}`,
    `Demo website ${demo.websiteId}, key ${demo.key}`,
    '',
    'Try it:',
    `curl -sS -X POST '${base}/api/v1/identify' -H 'Authorization: Bearer ${demo.key}' -H 'Content-Type: application/json' -d '${body}'`,
    '',
    'Admin command line on this database:',
    `MONGO_URL='${mongoUrl}' npm run -s cli -- --help`,
    ''
  ].join('\n'))
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? `Configuration error: ${error.message}` : error)
  process.exit(1)
})
