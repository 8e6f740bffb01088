import { ObjectId, type Filter } from 'mongodb'
import type { Profile } from '../../schemas/profiles.js'
import { isLinkTo, listsVisitors, profileIdFor, visitorLinkIdFor, type ProfileDocument } from './profile-documents.js'
import type { ProfileCollections } from './profile-store.js'

export interface ProfilePage {
  profiles: Profile[]
  /** The last profile's id when more may follow, else null. */
  nextAfter: string | null
}

export async function findProfile (collections: ProfileCollections, websiteId: string, userId: string): Promise<Profile | null> {
  const document = await findProfileDocument(collections, websiteId, profileIdFor(websiteId, userId))
  return document === null || document.userId !== userId ? null : await toProfile(collections, document)
}

export async function findProfileById (collections: ProfileCollections, websiteId: string, profileId: string): Promise<Profile | null> {
  const document = await findProfileDocument(collections, websiteId, new ObjectId(profileId))
  return document === null ? null : await toProfile(collections, document)
}

/** The profile the visitor's link points at, or null when it is linked to none. */
export async function findVisitorProfile (collections: ProfileCollections, websiteId: string, visitorId: string): Promise<Profile | null> {
  const link = await collections.visitorLinks.findOne({ _id: visitorLinkIdFor(websiteId, visitorId) })
  if (link === null) return null
  const document = await findProfileDocument(collections, websiteId, link.profileId)
  return document === null || !isLinkTo(link, document) ? null : await toProfile(collections, document)
}

/** One page of a website's profiles in `_id` order, after the given id (keyset pagination). */
export async function listProfiles (collections: ProfileCollections, websiteId: string, options: { after: string | null, limit: number }): Promise<ProfilePage> {
  const filter: Filter<ProfileDocument> = { websiteId: new ObjectId(websiteId) }
  if (options.after !== null) filter._id = { $gt: new ObjectId(options.after) }
  const documents = await collections.profiles.find(filter, { sort: { _id: 1 }, limit: options.limit + 1 }).toArray()
  const page = documents.slice(0, options.limit)
  return {
    profiles: await toProfiles(collections, page),
    nextAfter: documents.length > options.limit ? page.at(-1)?._id.toHexString() ?? null : null
  }
}

/** Every profile of a website in `_id` order through one cursor, a batch at a time, so memory stays flat. */
export async function * exportProfiles (collections: ProfileCollections, websiteId: string, batchSize: number): AsyncGenerator<Profile> {
  const cursor = collections.profiles.find({ websiteId: new ObjectId(websiteId) }, { sort: { _id: 1 }, batchSize })
  try {
    let batch: ProfileDocument[] = []
    for await (const document of cursor) {
      batch.push(document)
      if (batch.length < batchSize) continue
      yield * await toProfiles(collections, batch)
      batch = []
    }
    yield * await toProfiles(collections, batch)
  } finally {
    await cursor.close()
  }
}

export async function findProfileDocument ({ profiles }: ProfileCollections, websiteId: string, _id: ObjectId): Promise<ProfileDocument | null> {
  const document = await profiles.findOne({ _id })
  return document?.websiteId.equals(websiteId) === true ? document : null
}

async function toProfile (collections: ProfileCollections, document: ProfileDocument): Promise<Profile> {
  return shownProfile(document, await linkedVisitors(collections, [document]))
}

async function toProfiles (collections: ProfileCollections, documents: ProfileDocument[]): Promise<Profile[]> {
  const linked = await linkedVisitors(collections, documents)
  return documents.map((document) => shownProfile(document, linked))
}

/** The visitors of the profiles that no longer list them, from their links, in one query; keyed by linkKey. */
async function linkedVisitors ({ visitorLinks }: ProfileCollections, documents: ProfileDocument[]): Promise<Map<string, string[]>> {
  const linked = new Map<string, string[]>()
  const profileIds = documents.filter((document) => !listsVisitors(document)).map((document) => document._id)
  if (profileIds.length === 0) return linked
  const links = visitorLinks.find({ profileId: { $in: profileIds } }, { sort: { linkedAt: 1, _id: 1 } })
  for await (const link of links) {
    const key = linkKey(link.profileId, link.profileIncarnation)
    linked.set(key, [...linked.get(key) ?? [], link.visitorId])
  }
  return linked
}

const linkKey = (profileId: ObjectId, incarnation: ObjectId): string => `${profileId.toHexString()}:${incarnation.toHexString()}`

/** The profile as the API shows it (P in docs/api.md): its visitors from its list, or from its links once it gave that up. */
function shownProfile (document: ProfileDocument, linked: Map<string, string[]>): Profile {
  return {
    id: document._id.toHexString(),
    websiteId: document.websiteId.toHexString(),
    userId: document.userId,
    metadata: document.metadata,
    visitorIds: listsVisitors(document) ? [...document.visitorIds] : linked.get(linkKey(document._id, document.incarnation)) ?? [],
    createdAt: document.createdAt,
    updatedAt: document.updatedAt
  }
}
