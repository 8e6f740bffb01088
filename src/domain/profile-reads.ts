import type { Profile } from '../schemas/profiles.js'
import { notFound } from './errors.js'
import { encodeCursor } from './profiles.js'

export interface Erasure {
  profileId: string
  visitorLinks: number
}

export interface ProfileReadStore {
  findProfile: (websiteId: string, userId: string) => Promise<Profile | null>
  findProfileById: (websiteId: string, profileId: string) => Promise<Profile | null>
  findVisitorProfile: (websiteId: string, visitorId: string) => Promise<Profile | null>
  listProfiles: (websiteId: string, page: { after: string | null, limit: number }) => Promise<{ profiles: Profile[], nextAfter: string | null }>
  eraseProfile: (websiteId: string, profileId: string) => Promise<Erasure | null>
}

const found = (profile: Profile | null, message: string): Profile => {
  if (profile === null) throw notFound(message)
  return profile
}

export async function readProfile (store: ProfileReadStore, websiteId: string, profileId: string): Promise<Profile> {
  return found(await store.findProfileById(websiteId, profileId), 'The website has no profile with this id')
}

export async function readVisitorProfile (store: ProfileReadStore, websiteId: string, visitorId: string): Promise<Profile> {
  return found(await store.findVisitorProfile(websiteId, visitorId), 'The visitor is linked to no profile on this website')
}

export async function readUserProfile (store: ProfileReadStore, websiteId: string, userId: string): Promise<Profile> {
  return found(await store.findProfile(websiteId, userId), 'The website has no profile for this user_id')
}

/** One page of every profile, in id order, with the cursor of the next (docs/api.md#profiles). */
export async function listProfilePage (store: ProfileReadStore, websiteId: string, page: { after: string | null, limit: number }): Promise<{ profiles: Profile[], nextCursor: string | null }> {
  const { profiles, nextAfter } = await store.listProfiles(websiteId, page)
  return { profiles, nextCursor: nextAfter === null ? null : encodeCursor(nextAfter) }
}

export async function eraseProfile (store: ProfileReadStore, websiteId: string, profileId: string): Promise<Erasure> {
  const erasure = await store.eraseProfile(websiteId, profileId)
  if (erasure === null) throw notFound('The website has no profile with this id')
  return erasure
}
