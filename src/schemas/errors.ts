import { Type, type Static } from '@sinclair/typebox'
import { fieldRules } from '../domain/identify.js'

/** The one shape of every error, from every route. */
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
