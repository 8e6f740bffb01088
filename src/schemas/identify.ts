import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { FORBIDDEN_KEYS, MAX_KEY_LENGTH, type MetadataLimits } from '../domain/metadata.js'

export const OBJECT_ID_PATTERN = '^[0-9a-fA-F]{24}$'
const objectIdShape = new RegExp(OBJECT_ID_PATTERN)

/** An id in its canonical lowercase form, or null when it is not 24 hex characters. */
export function canonicalObjectId (value: string): string | null {
  return objectIdShape.test(value) ? value.toLowerCase() : null
}
const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'

/** The message for each rule a field can break, shared by validation errors and the OpenAPI text. */
export const fieldRules = {
  user_id: 'user_id must be a string of 1 to 255 characters with at least one that is not white space, and no NUL or unpaired surrogate',
  datafast_visitor_id: 'datafast_visitor_id must be a UUID string in the 8-4-4-4-12 hexadecimal form',
  websiteId: 'websiteId must be 24 hexadecimal characters'
} as const


// Unpaired surrogates are refused too, but only by src/domain/metadata.ts: fuzzers cannot use a pattern that names them.
const StorableString = Type.String({ pattern: '^[^\\u0000]*$' })
const keyRules = { minLength: 1, maxLength: MAX_KEY_LENGTH, not: { enum: [...FORBIDDEN_KEYS] } }
const MetadataKey = Type.String({ ...keyRules, pattern: '^[^$.\\u0000][^.\\u0000]*$' })
/** A top-level field name also neither starts nor ends with white space: it becomes an update path. */
const FieldName = Type.String({ ...keyRules, pattern: '^[^$.\\s\\u0085\\u0000](?:[^.\\u0000]*[^.\\s\\u0085\\u0000])?$' })
const scalars = [StorableString, Type.Number(), Type.Boolean(), Type.Null()]

/** An object whose values may still nest `levels` more objects or arrays. */
function metadataObject (levels: number): TSchema {
  return Type.Object({}, { additionalProperties: metadataValue(levels), propertyNames: MetadataKey })
}

/** A metadata value that may open at most `levels` more levels; arrays hold no arrays directly. */
function metadataValue (levels: number): TSchema {
  if (levels === 0) return Type.Union(scalars)
  const items = levels === 1 ? scalars : [...scalars, metadataObject(levels - 2)]
  return Type.Union([...scalars, Type.Array(Type.Union(items)), metadataObject(levels - 1)])
}

/**
 * The identify body, with every metadata rule that JSON Schema can state, so
 * that the OpenAPI document tells clients the truth. The 32 KiB and the
 * per-profile limits cannot be stated; src/domain/metadata.ts checks them,
 * and gives every rule its message.
 */
export function identifyBodySchema (limits: MetadataLimits) {
  return Type.Object({
    user_id: Type.String({
      minLength: 1,
      maxLength: 255,
      // Linear to match: a leading run of white space, then anything without NUL.
      pattern: '^\\s*[^\\s\\u0000][^\\u0000]*$',
      description: fieldRules.user_id
    }),
    datafast_visitor_id: Type.String({ pattern: UUID_PATTERN, description: `${fieldRules.datafast_visitor_id}; stored lowercase` })
  }, {
    additionalProperties: metadataValue(limits.maxDepth),
    propertyNames: FieldName,
    maxProperties: limits.maxFields + 2,
    description: 'Every other top-level field is profile metadata, shallow-merged into the profile. ' +
      `A field name is 1 to ${MAX_KEY_LENGTH} characters, does not start with "$" and holds no "." or NUL, at every depth, ` +
      'and a top-level one neither starts nor ends with white space; ' +
      `${FORBIDDEN_KEYS.join(', ')} are refused. Objects and arrays nest at most ${limits.maxDepth} deep inside a field's value, ` +
      'and an array holds no array directly. ' +
      `At most ${limits.maxFields} fields and ${limits.maxBytes} bytes (as JSON) of metadata per request; ` +
      `at most ${limits.profileMaxFields} fields and ${limits.profileMaxBytes} bytes (as BSON) per profile. ` +
      'A string that is empty or only the words undefined and null is ignored; null clears a field. ' +
      'No string may hold NUL or an unpaired surrogate.',
    examples: [{
      user_id: 'user_12345',
      datafast_visitor_id: '3f2b8c1e-9a4d-4f6b-8e2a-1c5d7e9f0a1b',
      name: 'Ada Lovelace',
      email: 'ada@example.com',
      plan: 'pro',
      seats: 3
    }]
  })
}

export const IdentifyQuery = Type.Object({
  websiteId: Type.Optional(Type.String({
    pattern: OBJECT_ID_PATTERN,
    description: 'The website to identify on: required with a dft_ account token; optional with a df_ website key, and then it must be the key\'s own website'
  }))
})

export const IdentifyAction = Type.Union([
  Type.Literal('created'),
  Type.Literal('updated'),
  Type.Literal('unchanged'),
  Type.Literal('skipped')
])

export type IdentifyAction = Static<typeof IdentifyAction>

export const IdentifySuccess = Type.Object({
  status: Type.Literal('success'),
  data: Type.Object({
    message: Type.String(),
    profileId: Type.Union([Type.String({ pattern: OBJECT_ID_PATTERN }), Type.Null()], {
      description: 'the profile\'s ObjectId; null when the website uses cookieless tracking'
    }),
    action: IdentifyAction
  }, { additionalProperties: false })
}, {
  additionalProperties: false,
  examples: [{ status: 'success', data: { message: 'User profile created successfully', profileId: '665f0b3c4d2e1a0012345678', action: 'created' } }]
})

export type IdentifySuccess = Static<typeof IdentifySuccess>
