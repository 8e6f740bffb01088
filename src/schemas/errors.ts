import { Type, type Static } from '@sinclair/typebox'
import { accountFieldRules } from '../domain/account-rules.js'
import { IDENTIFY_DELETE, PROFILE_READ_PERMISSIONS } from '../domain/credentials.js'
import { fieldRules } from '../domain/identify.js'

export const ErrorEnvelope = Type.Object({
  status: Type.Literal('error'),
  error: Type.Object({
    code: Type.Integer({ minimum: 400, maximum: 599, description: 'the HTTP status, repeated' }),
    message: Type.String({ description: 'what went wrong, naming the field and the rule it broke' })
  }, { additionalProperties: false })
}, {
  $id: 'ErrorEnvelope',
  additionalProperties: false,
  examples: [{ status: 'error', error: { code: 400, message: fieldRules.user_id } }]
})

export type ErrorEnvelope = Static<typeof ErrorEnvelope>

/** Fastify's maxParamLength, which the app keeps at its default. */
export const PATH_PARAMETER_TOO_LONG = 'A path parameter is longer than 100 characters'

type StatusTexts = Record<number, string>

/** OpenAPI responses: the error envelope under each status, described. */
export const errorResponses = (cases: StatusTexts) => Object.fromEntries(
  Object.entries(cases).map(([code, description]) => [code, { ...ErrorEnvelope, description }])
)

const unauthenticated = (credential: string) => `No, a malformed, an unknown, a revoked or an expired ${credential}`
const rateLimited = (credential: string, note = '') => `Too many calls for this ${credential}${note}, or too many failed authentications from this address`
const UNEXPECTED = 'An unexpected error; no detail is shown'
const UNAVAILABLE = 'The database is unreachable or the service is overloaded; see Retry-After'
const unavailableOrLate = (deadline: string, note = '') => `The database is unreachable, the service is overloaded, or the call passed ${deadline}; see Retry-After${note}`
const WEBSITE_OF_TOKEN = 'With a dft_ token: the website does not exist or belongs to another account'
const IDENTIFY_FORBIDDEN = 'The key belongs to another website, the token lacks identify:write or the website, or tracking is suspended'

export const identifyStatuses: StatusTexts = {
  400: 'The body, a metadata rule or websiteId is invalid, user_id or the visitor id is a placeholder, or a dft_ token came without websiteId',
  401: unauthenticated('key or token'),
  403: IDENTIFY_FORBIDDEN,
  404: WEBSITE_OF_TOKEN,
  409: 'The profile would exceed PROFILE_MAX_FIELDS or PROFILE_MAX_BYTES: the request is valid, but the stored profile cannot take it',
  413: 'The body, decoded if it came in gzip, is larger than the body limit (64 KiB by default)',
  415: 'The body is not application/json, or its Content-Encoding is neither gzip nor identity',
  429: rateLimited('key or token'),
  500: UNEXPECTED,
  503: unavailableOrLate('CALL_DEADLINE_MS')
}

export const identifyBatchStatuses: StatusTexts = {
  400: 'The body is not an object holding only an items array of 1 to BATCH_MAX_ITEMS entries, websiteId is invalid, or a dft_ token came without websiteId; nothing is stored (a bad item is reported in its result instead)',
  401: unauthenticated('key or token'),
  403: IDENTIFY_FORBIDDEN,
  404: WEBSITE_OF_TOKEN,
  413: 'The body is larger than BATCH_BODY_LIMIT_BYTES (5 MiB by default)',
  415: 'The body is not application/json',
  429: rateLimited('key or token', ' (a batch counts as one call)'),
  500: UNEXPECTED,
  503: unavailableOrLate('BATCH_CALL_DEADLINE_MS', '. Sending the same batch again is safe')
}

const profileCommon: StatusTexts = { 401: unauthenticated('key or token'), 429: rateLimited('key or token'), 500: UNEXPECTED, 503: UNAVAILABLE }
const profileWebsite = (permissions: string): StatusTexts => ({
  403: `The key belongs to another website than websiteId, or the token lacks ${permissions} or is not allowed on the website`,
  404: 'No such profile on the website; with a dft_ token, also a website that does not exist or belongs to another account'
})
const readPermissions = PROFILE_READ_PERMISSIONS.join(' and ')

export const profileStatuses = {
  list: {
    400: 'A malformed user_id, limit, cursor or websiteId, or a dft_ token without websiteId',
    ...profileWebsite(readPermissions),
    ...profileCommon
  },
  read: {
    400: 'A malformed profileId, visitorId or websiteId, or a dft_ token without websiteId',
    ...profileWebsite(readPermissions),
    414: PATH_PARAMETER_TOO_LONG,
    ...profileCommon
  },
  erase: {
    400: 'A malformed profileId or websiteId, or a dft_ token without websiteId',
    ...profileWebsite(IDENTIFY_DELETE),
    414: PATH_PARAMETER_TOO_LONG,
    ...profileCommon
  }
} satisfies Record<string, StatusTexts>

const BAD_ADMIN_ID = 'The id in the path is not 24 hexadecimal characters'

export const adminStatuses = {
  /** What every Account API route can answer; routes add their own. */
  common: {
    401: unauthenticated('token'),
    403: 'A df_ website key, or a token without the permission this route needs',
    429: rateLimited('token'),
    500: UNEXPECTED,
    503: UNAVAILABLE
  } satisfies StatusTexts,
  /** A route with a body. */
  body: {
    413: 'The body is larger than the body limit (64 KiB by default)',
    415: 'The body is not application/json'
  } satisfies StatusTexts,
  byId: (withBody: boolean): StatusTexts => ({
    400: withBody ? `${BAD_ADMIN_ID}, or the body breaks a rule (the message names it)` : BAD_ADMIN_ID,
    404: 'The id is unknown, of another account, or outside the token\'s websites: the same answer for all three'
  }),
  createAccessToken: {
    400: 'The body breaks a rule (the message names it): an unknown permission, a malformed website id, an expiry that is malformed or past',
    403: 'A df_ website key, a token without api-keys:write, or a new token wider than the calling one (the message names what exceeds)',
    404: 'A website of websiteIds is unknown or of another account',
    409: 'The account already holds MAX_TOKENS_PER_ACCOUNT active tokens (20 by default)'
  } satisfies StatusTexts,
  createWebsite: {
    400: `The body breaks a rule (the message names it): ${accountFieldRules.domain}`,
    403: 'A df_ website key, a token without websites:write, or a token limited to some websites'
  } satisfies StatusTexts
}
