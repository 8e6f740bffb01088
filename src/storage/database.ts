import { MongoClient, type Db } from 'mongodb'
import { databaseNameOf } from './mongo-url.js'

export interface Database {
  client: MongoClient
  db: Db
}

/** Short timeouts: an unreachable database is a 503 within seconds, not after the driver's 30 s (docs/internals.md#database-connection). */
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

const READINESS_COLLECTION = 'readiness'

/** A find on an empty collection, not `ping`, which DocumentDB's gateway answers while PostgreSQL is down (docs/documentdb.md#where-documentdb-differs-from-mongodb-and-what-the-service-does). */
export async function checkDatabase (db: Db): Promise<void> {
  await db.collection(READINESS_COLLECTION).findOne({})
}
