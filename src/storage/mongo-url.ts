import { ConnectionString } from 'mongodb-connection-string-url'

export const DEFAULT_DATABASE_NAME = 'identify'

export function databaseNameOf (url: string): string {
  const name = decodeURIComponent(new ConnectionString(url).pathname.slice(1))
  return name === '' ? DEFAULT_DATABASE_NAME : name
}

/** The same servers, credentials and options with another database name in the path. */
export function withDatabaseName (url: string, name: string): string {
  const connectionString = new ConnectionString(url)
  connectionString.pathname = `/${encodeURIComponent(name)}`
  return connectionString.toString()
}
