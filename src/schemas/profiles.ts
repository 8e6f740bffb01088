import { Type, type Static } from '@sinclair/typebox'
import { fieldRules, USER_ID_MAX_LENGTH, USER_ID_PATTERN } from '../domain/identify.js'
import { OBJECT_ID_PATTERN, UUID_PATTERN } from '../domain/ids.js'
import { CURSOR_PATTERN, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, profileRules } from '../domain/profiles.js'

// src/domain/profiles.ts checks the parameters, naming the broken rule; these state the same rules for OpenAPI and fuzzers.

const ObjectIdString = (description: string) => Type.String({ pattern: OBJECT_ID_PATTERN, description })
/** A Date in code, an ISO 8601 string on the wire (the serializer calls toISOString). */
const DateTime = (description: string) => Type.Unsafe<Date>({ type: 'string', format: 'date-time', description })

export const WebsiteQuery = Type.Object({
  websiteId: Type.Optional(ObjectIdString('The website: required with a dft_ account token; optional with a df_ website key, and then it must be the key\'s own website'))
})

export const ProfilesQuery = Type.Object({
  websiteId: WebsiteQuery.properties.websiteId,
  user_id: Type.Optional(Type.String({
    minLength: 1,
    maxLength: USER_ID_MAX_LENGTH,
    pattern: USER_ID_PATTERN,
    description: `Answer the profile of this user (as sent to identify) instead of a page; limit and cursor then have no effect. ${fieldRules.user_id}`
  })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: PAGE_LIMIT_MAX, default: PAGE_LIMIT_DEFAULT, description: 'Profiles per page' })),
  cursor: Type.Optional(Type.String({ pattern: CURSOR_PATTERN, description: `Where the page starts: ${profileRules.cursor.replace('cursor must be ', '')}` }))
})

export const ProfileParams = Type.Object({
  profileId: ObjectIdString('The profile\'s id, as identify answered it')
})

export const VisitorParams = Type.Object({
  visitorId: Type.String({ pattern: UUID_PATTERN, description: 'A datafast_visitor_id, in any case' })
})

/** P: what every route, the CLI's `profiles get` and `profiles export` show of a profile. */
export const Profile = Type.Object({
  id: ObjectIdString('The profile\'s id'),
  websiteId: ObjectIdString('The website it belongs to'),
  userId: Type.String({ description: 'The user_id, exactly as identify was sent it' }),
  metadata: Type.Record(Type.String(), Type.Unknown(), { description: 'The merged metadata fields' }),
  visitorIds: Type.Array(Type.String({ pattern: UUID_PATTERN }), { description: 'The visitors linked to the profile, in lowercase, in the order they were linked' }),
  createdAt: DateTime('When the profile was created'),
  updatedAt: DateTime('When the metadata last changed')
}, { additionalProperties: false })

const success = <T extends ReturnType<typeof Type.Object>>(data: T, example: unknown) =>
  Type.Object({ status: Type.Literal('success'), data }, { additionalProperties: false, examples: [{ status: 'success', data: example }] })

const exampleProfile = {
  id: '665f0b3c4d2e1a0012345678',
  websiteId: '665f0a1b2c3d4e5f60718293',
  userId: 'user_12345',
  metadata: { name: 'Ada Lovelace', plan: 'pro' },
  visitorIds: ['3f2b8c1e-9a4d-4f6b-8e2a-1c5d7e9f0a1b'],
  createdAt: '2026-01-31T12:00:00.000Z',
  updatedAt: '2026-02-01T08:30:00.000Z'
}

export const ProfileSuccess = success(Type.Object({ profile: Profile }, { additionalProperties: false }), { profile: exampleProfile })

export const ProfilePageSuccess = success(Type.Object({
  profiles: Type.Array(Profile),
  nextCursor: Type.Union([Type.String({ pattern: CURSOR_PATTERN }), Type.Null()], {
    description: 'Pass it as cursor for the next page; null on the last page'
  })
}, { additionalProperties: false }), { profiles: [exampleProfile], nextCursor: 'Zl8LPE0uGgASNFZ4' })

export const ErasureSuccess = success(Type.Object({
  profileId: ObjectIdString('The erased profile\'s id'),
  erased: Type.Literal(true),
  visitorLinks: Type.Integer({ minimum: 0, description: 'How many visitor links were erased with it' })
}, { additionalProperties: false }), { profileId: '665f0b3c4d2e1a0012345678', erased: true, visitorLinks: 2 })

export type Profile = Static<typeof Profile>
export type ProfileSuccess = Static<typeof ProfileSuccess>
export type ProfilePageSuccess = Static<typeof ProfilePageSuccess>
export type ErasureSuccess = Static<typeof ErasureSuccess>
