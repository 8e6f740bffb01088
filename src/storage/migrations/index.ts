import type { Db } from 'mongodb'
import { profileIncarnations } from './profile-incarnations.js'
import { runMigrations, type Migration, type MigrationLog } from './runner.js'

/** Every step, in the order they run; append new ones at the end. */
const MIGRATIONS: readonly Migration[] = [profileIncarnations]

export async function migrate (db: Db, log: MigrationLog): Promise<void> {
  await runMigrations(db, MIGRATIONS, log)
}
