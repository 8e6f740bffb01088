import type { Db } from 'mongodb'
import { retryOnDuplicateKey } from '../mongo-errors.js'

export interface Migration<Result extends object = object> {
  /** Its record's `_id` in `schemaUpgrades`: never renamed, or stores run it again. */
  name: string
  run: (db: Db) => Promise<Result>
}

interface SchemaUpgradeDocument {
  _id: string
  doneAt: Date
}

export interface MigrationLog {
  info: (details: object, message: string) => void
  debug: (details: object, message: string) => void
}

const records = (db: Db) => db.collection<SchemaUpgradeDocument>('schemaUpgrades')

/** Runs one step unless recorded as done, then records it; null when it was done already. */
export async function runMigration<Result extends object> (db: Db, step: Migration<Result>): Promise<Result | null> {
  if (await records(db).findOne({ _id: step.name }) !== null) return null
  const result = await step.run(db)
  // Replicas starting together may both run a step (each is idempotent); the second upsert can race the first.
  await retryOnDuplicateKey(async () => await records(db).updateOne({ _id: step.name }, { $set: { doneAt: new Date() } }, { upsert: true }))
  return result
}

/** Runs the steps in order, each at most once per database, logging what each did (docs/storage.md#migrations). */
export async function runMigrations (db: Db, steps: readonly Migration[], log: MigrationLog): Promise<void> {
  for (const step of steps) {
    const result = await runMigration(db, step)
    if (result === null) log.debug({ migration: step.name }, 'migration already done')
    else log.info({ migration: step.name, ...result }, 'migration done')
  }
}
