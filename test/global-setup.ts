import type { TestProject } from 'vitest/node'
import { startDatabase } from '../tools/local-database.js'

declare module 'vitest' {
  export interface ProvidedContext {
    mongoUrl: string
    /** True when the run started its own DocumentDB; false on a server at MONGO_URL. */
    databaseEmbedded: boolean
  }
}

/** One database server for the whole run; each test file works in a database of its own on it. */
export default async function setup (project: TestProject): Promise<() => Promise<void>> {
  const database = await startDatabase()
  project.provide('mongoUrl', database.url)
  project.provide('databaseEmbedded', database.embedded)
  return async () => { await database.close() }
}
