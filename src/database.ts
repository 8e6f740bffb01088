import { MongoClient, type Db } from 'mongodb'

export interface Database {
  client: MongoClient
  db: Db
}

const DEFAULT_DATABASE = 'identify'

/** The database named in the URL's path, or `identify` when the path names none. */
export function databaseNameOf (url: string): string {
  const name = /^mongodb(?:\+srv)?:\/\/[^/]*\/([^?]*)/.exec(url)?.[1]
  return name === undefined || name === '' ? DEFAULT_DATABASE : decodeURIComponent(name)
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
