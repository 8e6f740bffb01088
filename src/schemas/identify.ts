import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { fieldRules, NIL_UUID, SET_ONCE, UNSET, UNSET_MAX_NAMES, USER_ID_MAX_LENGTH, USER_ID_PATTERN, type IdentifyRules } from '../domain/identify.js'
import { OBJECT_ID_PATTERN, UUID_PATTERN } from '../domain/ids.js'
import {
  FIELD_NAME_PATTERN,
  FORBIDDEN_KEYS,
  KEY_PATTERN,
  MAX_KEY_LENGTH,
  STORABLE_STRING_PATTERN
} from '../domain/metadata.js'

// The patterns come from the domain, which applies the same rules with a message for each.
const StorableString = Type.String({ pattern: STORABLE_STRING_PATTERN })
const keyRules = { minLength: 1, maxLength: MAX_KEY_LENGTH, not: { enum: [...FORBIDDEN_KEYS] } }
const MetadataKey = Type.String({ ...keyRules, pattern: KEY_PATTERN })
const FieldName = Type.String({ ...keyRules, pattern: FIELD_NAME_PATTERN })
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

/** Every rule JSON Schema can state, so OpenAPI tells the truth; the route checks with the domain's checkIdentifyBody, which adds the byte and profile limits. */
export function identifyBodySchema ({ limits, userIdDenylist }: IdentifyRules) {
  const denied = [...userIdDenylist]
  return Type.Object({
    user_id: Type.String({
      minLength: 1,
      maxLength: USER_ID_MAX_LENGTH,
      pattern: USER_ID_PATTERN,
      ...(denied.length > 0 ? { not: { pattern: denylistPattern(denied) } } : {}),
      description: denied.length > 0
        ? `${fieldRules.user_id}; refused as a placeholder, in any case and with white space around it: ${denied.join(', ')}`
        : fieldRules.user_id
    }),
    datafast_visitor_id: Type.String({
      pattern: UUID_PATTERN,
      not: { enum: [NIL_UUID] },
      description: `${fieldRules.datafast_visitor_id}, not the nil UUID; stored lowercase`
    }),
    [SET_ONCE]: Type.Optional(Type.Object({}, {
      additionalProperties: metadataValue(limits.maxDepth),
      propertyNames: FieldName,
      maxProperties: limits.maxFields,
      description: 'Fields stored only where the profile does not hold them yet (first-touch values), under the same rules as plain fields, which they count with'
    })),
    [UNSET]: Type.Optional(Type.Array(FieldName, {
      maxItems: UNSET_MAX_NAMES,
      uniqueItems: true,
      description: `Names of fields removed from the profile, at most ${UNSET_MAX_NAMES}`
    }))
  }, {
    additionalProperties: metadataValue(limits.maxDepth),
    propertyNames: { anyOf: [FieldName, Type.Unsafe<string>({ type: 'string', enum: [SET_ONCE, UNSET] })] },
    maxProperties: limits.maxFields + 4,
    description: 'Every other top-level field is profile metadata, shallow-merged into the profile. ' +
      `A field name is 1 to ${MAX_KEY_LENGTH} characters, does not start with "$" and holds no "." or NUL, at every depth, ` +
      'and a top-level one neither starts nor ends with white space; ' +
      `${FORBIDDEN_KEYS.join(', ')} are refused. Objects and arrays nest at most ${limits.maxDepth} deep inside a field's value, ` +
      'and an array holds no array directly. ' +
      `At most ${limits.maxFields} fields and ${limits.maxBytes} bytes (as JSON) of metadata per request; ` +
      `at most ${limits.profileMaxFields} fields and ${limits.profileMaxBytes} bytes (as BSON) per profile. ` +
      'A string that is empty or only the words undefined and null is ignored; null clears a field. ' +
      'No string may hold NUL or an unpaired surrogate. ' +
      `${SET_ONCE} and ${UNSET} are the only operators (the only keys starting with "$"); a field may be named once across plain fields, ${SET_ONCE} and ${UNSET}.`,
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

/** Matches a denied user_id as checkIdentifyBody does: trimmed, in any case. */
function denylistPattern (words: string[]): string {
  const anyCase = (word: string) => Array.from(word, (char) =>
    char.toLowerCase() === char.toUpperCase() ? char.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&') : `[${char.toLowerCase()}${char.toUpperCase()}]`).join('')
  return `^\\s*(?:${words.map(anyCase).join('|')})\\s*$`
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
