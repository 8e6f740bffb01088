import type { App } from '../src/app.js'
import type { Config } from '../src/config.js'
import type { DestinationStream } from 'pino'
import { startDatabase, withDatabaseName, type LocalDatabase } from '../tools/local-database.js'
import { buildTestApp, createTestWebsite, withConnectionOptions, type TestWebsite } from './helper.js'

/** An app on a database server of its own, which the test may stop and start again. */
export interface AppOnOwnDatabase {
  app: App
  /** The test's own DocumentDB: stop('SIGTERM' or 'SIGKILL', part) and start() it at will. */
  database: LocalDatabase
  site: TestWebsite
  /** Starts the server if it is down (the app drops its database as it closes), then closes both. */
  close: () => Promise<void>
}

/**
 * For tests that take the database down: a DocumentDB started for this test
 * alone (even when MONGO_URL names a shared server, which must stay up for the
 * other files), an app on it, and a website. With monitorCommands, the
 * app's MongoClient emits command events; with logStream, its log lines go there.
 */
export async function appOnOwnDatabase (overrides: Partial<Config> = {}, options: { monitorCommands?: boolean, logStream?: DestinationStream } = {}): Promise<AppOnOwnDatabase> {
  const database = await startDatabase({ embedded: true })
  const url = withDatabaseName(database.url, 'own')
  let app: App
  try {
    app = await buildTestApp({ MONGO_URL: options.monitorCommands === true ? withConnectionOptions(url, { monitorCommands: 'true' }) : url, ...overrides }, { logStream: options.logStream })
  } catch (error) {
    await database.close()
    throw error
  }
  const site = await createTestWebsite(app)
  return {
    app,
    database,
    site,
    close: async () => {
      await database.start()
      await app.close()
      await database.close()
    }
  }
}

/** Runs the task while the database is stalled (its gateway SIGSTOPped: connections open, nothing answered), then resumes it. */
export async function whileDatabaseStalled<T> (database: LocalDatabase, task: () => Promise<T>): Promise<T> {
  const pid = database.pid('gateway')
  if (pid === null) throw new Error('the gateway of this database is not running')
  process.kill(pid, 'SIGSTOP')
  try {
    return await task()
  } finally {
    process.kill(pid, 'SIGCONT')
  }
}
