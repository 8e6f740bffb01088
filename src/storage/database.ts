import { MongoClient, type Db } from 'mongodb'
import { databaseNameOf } from './mongo-url.js'

export interface Database {
  client: MongoClient
  db: Db
}

/**
 * Connects with short timeouts so that an unreachable database fails a
 * request within seconds (a 503) instead of after the driver's 30 s default.
 * The server, the command line and the benchmarks all connect through here,
 * so they share one set of connection settings.
 */
export async function connectDatabase (url: string, timeoutMs: number): Promise<Database> {
  const client = new MongoClient(url, {
    serverSelectionTimeoutMS: timeoutMs,
    connectTimeoutMS: timeoutMs,
    socketTimeoutMS: timeoutMs * 2,
    appName: 'identify-service'
  })
  await client.connect()
  return { client, db: client.db(databaseNameOf(url)) }
}

/** A collection that nothing writes: readiness finds nothing in it. */
const READINESS_COLLECTION = 'readiness'

/**
 * A round trip to where the data lives, for readiness. DocumentDB's gateway
 * answers `ping` itself, even while its PostgreSQL is down; a find goes
 * through to PostgreSQL, and on MongoDB costs no more than a ping.
 */
export async function checkDatabase (db: Db): Promise<void> {
  await db.collection(READINESS_COLLECTION).findOne({})
}
