import type { Db } from 'mongodb'
import { profileCollections } from '../repositories/profile-store.js'
import type { Migration } from './runner.js'

interface IncarnationsUpgrade {
  profiles: number
  visitorLinks: number
}

/** Profiles and links of the version before incarnations, given today's shape (docs/storage.md#profile-incarnations). */
export const profileIncarnations: Migration<IncarnationsUpgrade> = {
  name: 'profile-incarnations',
  async run (db: Db): Promise<IncarnationsUpgrade> {
    const collections = profileCollections(db)
    const profiles = await collections.profiles.updateMany({ incarnation: { $exists: false } }, [{ $set: { incarnation: '$_id', visitorIdsInLinks: true } }])
    const visitorLinks = await collections.visitorLinks.updateMany({ profileIncarnation: { $exists: false } }, [{ $set: { profileIncarnation: '$profileId' } }])
    return { profiles: profiles.modifiedCount, visitorLinks: visitorLinks.modifiedCount }
  }
}
