import { Type, type Static, type TSchema } from '@sinclair/typebox'
import {
  accountFieldRules,
  DOMAIN_MAX_LENGTH,
  DOMAIN_PATTERN,
  EXPIRES_AT_PATTERN,
  MAX_TOKEN_WEBSITES,
  NAME_MAX_LENGTH,
  NAME_PATTERN
} from '../domain/account-rules.js'
import { KNOWN_PERMISSIONS } from '../domain/credentials.js'
import { OBJECT_ID_PATTERN } from '../domain/ids.js'

// The patterns come from the domain, which applies the same rules with a message for each.
const ObjectIdString = Type.String({ pattern: OBJECT_ID_PATTERN })
const Timestamp = Type.String({ format: 'date-time' })
const Name = Type.String({ minLength: 1, maxLength: NAME_MAX_LENGTH, pattern: NAME_PATTERN, description: `${accountFieldRules.name}; stored trimmed` })
const Domain = Type.String({ maxLength: DOMAIN_MAX_LENGTH, pattern: DOMAIN_PATTERN, description: `${accountFieldRules.domain}; stored in lowercase` })
const Permission = Type.String({ enum: [...KNOWN_PERMISSIONS] })

/** W: a website as the Account API shows it. */
export const WebsiteView = Type.Object({
  id: ObjectIdString,
  domain: Type.String(),
  cookieless: Type.Boolean(),
  suspended: Type.Boolean(),
  createdAt: Timestamp
}, { additionalProperties: false })
export type WebsiteView = Static<typeof WebsiteView>

/** K: a website key without its secret or hash. */
export const ApiKeyView = Type.Object({
  id: ObjectIdString,
  websiteId: ObjectIdString,
  name: Type.String(),
  displayPrefix: Type.String({ description: 'the first characters of the key, to tell keys apart' }),
  createdAt: Timestamp,
  revokedAt: Type.Union([Timestamp, Type.Null()])
}, { additionalProperties: false })
export type ApiKeyView = Static<typeof ApiKeyView>

/** T: an account token without its secret or hash. */
export const AccessTokenView = Type.Object({
  id: ObjectIdString,
  name: Type.String(),
  permissions: Type.Array(Type.String()),
  websiteIds: Type.Array(ObjectIdString, { description: 'the websites the token may act on; empty means every website of the account' }),
  displayPrefix: Type.String({ description: 'the first characters of the token, to tell tokens apart' }),
  createdAt: Timestamp,
  expiresAt: Type.Union([Timestamp, Type.Null()]),
  revokedAt: Type.Union([Timestamp, Type.Null()])
}, { additionalProperties: false })
export type AccessTokenView = Static<typeof AccessTokenView>

export const IdParams = Type.Object({
  id: Type.String({ pattern: OBJECT_ID_PATTERN, description: accountFieldRules.id })
})

export const WebsiteCreateBody = Type.Object({
  domain: Domain,
  cookieless: Type.Optional(Type.Boolean({ description: 'cookieless tracking: identify calls succeed and store nothing (default false)' }))
}, { additionalProperties: false, examples: [{ domain: 'example.com' }] })

export const WebsitePatchBody = Type.Object({
  domain: Type.Optional(Domain),
  cookieless: Type.Optional(Type.Boolean()),
  suspended: Type.Optional(Type.Boolean({ description: 'true stops identify calls for the website at once (403), false resumes them' }))
}, { additionalProperties: false, minProperties: 1, examples: [{ suspended: true }] })

export const ApiKeyCreateBody = Type.Object({
  name: Type.Optional(Name)
}, { additionalProperties: false, examples: [{ name: 'backend-2026' }] })

export const AccessTokenCreateBody = Type.Object({
  name: Type.Optional(Name),
  permissions: Type.Array(Permission, { minItems: 1, description: 'each one held by the calling token (`*` holds all)' }),
  websiteIds: Type.Optional(Type.Array(ObjectIdString, {
    maxItems: MAX_TOKEN_WEBSITES,
    description: 'websites of the account the new token may act on, inside the calling token\'s; empty or absent means every website, which only a token for every website may grant'
  })),
  expiresAt: Type.Optional(Type.Union([Type.String({ pattern: EXPIRES_AT_PATTERN }), Type.Null()], {
    description: `${accountFieldRules.expiresAt}, in the future and no later than the calling token's own expiry; absent or null: never`
  }))
}, { additionalProperties: false, examples: [{ name: 'ci', permissions: ['api-keys:write'], expiresAt: '2030-01-31T00:00:00Z' }] })

/** What each Account API route does, as its log line and its metric name it. */
export const ADMIN_ACTIONS = [
  'websites.list', 'websites.create', 'websites.update',
  'api-keys.list', 'api-keys.create', 'api-keys.revoke',
  'access-tokens.list', 'access-tokens.create', 'access-tokens.revoke'
] as const
export type AdminAction = typeof ADMIN_ACTIONS[number]

function success<T extends TSchema> (data: T) {
  return Type.Object({ status: Type.Literal('success'), data }, { additionalProperties: false })
}

export const WebsiteList = success(Type.Object({ websites: Type.Array(WebsiteView) }, { additionalProperties: false }))
export const WebsiteOne = success(Type.Object({ website: WebsiteView }, { additionalProperties: false }))
export const ApiKeyList = success(Type.Object({ apiKeys: Type.Array(ApiKeyView) }, { additionalProperties: false }))
export const ApiKeyOne = success(Type.Object({ apiKey: ApiKeyView }, { additionalProperties: false }))
export const ApiKeyCreated = success(Type.Object({
  apiKey: ApiKeyView,
  key: Type.String({ description: 'the df_ key itself: shown only here, store it now' })
}, { additionalProperties: false }))
export const AccessTokenList = success(Type.Object({ accessTokens: Type.Array(AccessTokenView) }, { additionalProperties: false }))
export const AccessTokenOne = success(Type.Object({ accessToken: AccessTokenView }, { additionalProperties: false }))
export const AccessTokenCreated = success(Type.Object({
  accessToken: AccessTokenView,
  token: Type.String({ description: 'the dft_ token itself: shown only here, store it now' })
}, { additionalProperties: false }))
