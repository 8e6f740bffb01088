import { Type, type Static } from '@sinclair/typebox'
import type { IdentifyRules } from '../domain/identify.js'
import { OBJECT_ID_PATTERN } from '../domain/ids.js'
import { identifyBodySchema, IdentifyAction } from './identify.js'

/** An item is "an identify body, or anything": a bad item is an error result in a 200, not a 400. */
export function identifyBatchBodySchema (rules: IdentifyRules, maxItems: number) {
  return Type.Object({
    items: Type.Array(Type.Union([identifyBodySchema(rules), Type.Unknown({ description: 'anything else: refused as an error result of its own' })]), {
      minItems: 1,
      maxItems,
      description: `1 to ${maxItems} identify bodies (BATCH_MAX_ITEMS), applied as if sent one by one in this order; a bad item fails alone`
    })
  }, { additionalProperties: false })
}

const ItemSuccess = Type.Object({
  index: Type.Integer({ minimum: 0, description: 'the item\'s position in items' }),
  status: Type.Literal('success'),
  action: IdentifyAction,
  profileId: Type.Union([Type.String({ pattern: OBJECT_ID_PATTERN }), Type.Null()], {
    description: 'the profile\'s ObjectId; null when the website uses cookieless tracking'
  })
}, { additionalProperties: false })

const ItemError = Type.Object({
  index: Type.Integer({ minimum: 0 }),
  status: Type.Literal('error'),
  error: Type.Object({
    code: Type.Union([Type.Literal(400), Type.Literal(409)], { description: '400: the item breaks a rule of identify bodies; 409: its profile cannot take it' }),
    message: Type.String()
  }, { additionalProperties: false })
}, { additionalProperties: false })

export const BatchItemResult = Type.Union([ItemSuccess, ItemError])
export type BatchItemResult = Static<typeof BatchItemResult>

const Count = Type.Integer({ minimum: 0 })

/** What a batch did: one result per item in input order, and the count of each outcome. */
export const BatchOutcome = Type.Object({
  results: Type.Array(BatchItemResult),
  counts: Type.Object({ created: Count, updated: Count, unchanged: Count, skipped: Count, failed: Count }, { additionalProperties: false })
}, { additionalProperties: false })
export type BatchOutcome = Static<typeof BatchOutcome>

export const IdentifyBatchSuccess = Type.Object({
  status: Type.Literal('success'),
  data: BatchOutcome
}, {
  additionalProperties: false,
  examples: [{
    status: 'success',
    data: {
      results: [
        { index: 0, status: 'success', action: 'created', profileId: '665f0b3c4d2e1a0012345678' },
        { index: 1, status: 'error', error: { code: 400, message: 'datafast_visitor_id must be a UUID string in the 8-4-4-4-12 hexadecimal form' } }
      ],
      counts: { created: 1, updated: 0, unchanged: 0, skipped: 0, failed: 1 }
    }
  }]
})
export type IdentifyBatchSuccess = Static<typeof IdentifyBatchSuccess>
