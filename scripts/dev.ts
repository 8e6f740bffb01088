import { randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import closeWithGrace from 'close-with-grace'
import { buildApp, type App } from '../src/app.js'
import { ConfigError, loadConfig } from '../src/config.js'
import { hashSecret } from '../src/domain/credentials.js'
import { DEFAULT_DATABASE_NAME, withDatabaseName } from '../src/storage/mongo-url.js'
import { startDatabase } from '../tools/local-database.js'
import { provisionWebsite } from '../tools/provision.js'

/**
 * `npm run dev`: the service on the local database (DocumentDB under .data/,
 * or MONGO_URL), with a demo website and key made on first start.
 */
const dataDir = join(process.cwd(), '.data')
const demoFile = join(dataDir, 'demo.json')

interface Demo {
  websiteId: string
  key: string
  /** The curl line's visitor, kept so that the same call answers `unchanged` after a restart. */
  visitorId: string
}

function saveDemo (demo: Demo): Demo {
  writeFileSync(demoFile, `${JSON.stringify(demo, null, 2)}\n`, { mode: 0o600 })
  return demo
}

/** The demo key is kept in plain text under .data/ so that every start can print it: development only. */
async function ensureDemo (app: App): Promise<Demo> {
  if (existsSync(demoFile)) {
    const saved = JSON.parse(readFileSync(demoFile, 'utf8')) as Omit<Demo, 'visitorId'> & { visitorId?: string }
    const key = await app.repositories.credentials.findWebsiteKey(hashSecret(saved.key))
    // A demo.json from before the visitor was kept gains one.
    if (key !== null && !key.revoked) return saveDemo({ ...saved, visitorId: saved.visitorId ?? randomUUID() })
  }
  const { websiteId, key } = await provisionWebsite(app.repositories, { accountName: 'Demo account', domain: 'localhost', keyName: 'demo' })
  return saveDemo({ websiteId, key, visitorId: randomUUID() })
}

async function main (): Promise<void> {
  const config = loadConfig({ NODE_ENV: 'development', ...process.env })
  mkdirSync(dataDir, { recursive: true })
  const database = await startDatabase({ dataDir: join(dataDir, 'documentdb') })
  const mongoUrl = database.embedded ? withDatabaseName(database.url, DEFAULT_DATABASE_NAME) : database.url
  const app = await buildApp({ ...config, MONGO_URL: mongoUrl })
  const { close } = closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS, skip: ['SIGINT', 'SIGTERM'] }, async ({ err }) => {
    if (err !== undefined) console.error(err)
    console.log('\nStopping…')
    await app.close()
    await database.close()
    console.log('Stopped.')
  })
  // One Ctrl-C can arrive twice (npm and tsx relay the terminal's), so later signals are ignored: the grace delay bounds the stop.
  let stopping = false
  const stop = (): void => {
    if (!stopping) close()
    stopping = true
  }
  process.on('SIGINT', stop).on('SIGTERM', stop)
  const demo = await ensureDemo(app)
  await app.listen({ host: config.HOST, port: config.PORT })

  const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? '127.0.0.1' : config.HOST
  const base = `http://${host.includes(':') ? `[${host}]` : host}:${String(config.PORT)}`
  const body = JSON.stringify({ user_id: 'user_123', datafast_visitor_id: demo.visitorId, name: 'Ada Lovelace', plan: 'pro' })
  console.log([
    '',
    `Identify service: ${base}`,
    `Database: ${database.embedded ? `local DocumentDB, data in ${join(dataDir, 'documentdb')}` : 'MONGO_URL'}`,
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
