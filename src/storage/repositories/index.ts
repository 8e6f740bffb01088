import type { Db } from 'mongodb'
import { CredentialsRepository } from './credentials.js'
import { ProfilesRepository } from './profiles.js'
import { WebsitesRepository } from './websites.js'

export interface Repositories {
  websites: WebsitesRepository
  credentials: CredentialsRepository
  profiles: ProfilesRepository
}

export function createRepositories (db: Db): Repositories {
  return {
    websites: new WebsitesRepository(db),
    credentials: new CredentialsRepository(db),
    profiles: new ProfilesRepository(db)
  }
}

/** Creates every index the repositories rely on; safe to run at every start. Stored shapes are migrate's job. */
export async function ensureIndexes (repositories: Repositories): Promise<void> {
  await repositories.websites.ensureIndexes()
  await repositories.credentials.ensureIndexes()
  await repositories.profiles.ensureIndexes()
}
