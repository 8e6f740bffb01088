import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { buildTestApp } from '../../../test/helper.js'
import { API_TYPES_PATH, apiTypesSource, REGENERATE_COMMAND, type ApiSchemas } from '../scripts/api-types.js'
import { emitTypes } from '../scripts/json-schema-to-ts.js'
import type { IdentifyBody } from '../src/index.js'

/**
 * The client's request and answer types are generated from the service's
 * schemas (clients/node/scripts/generate-types.ts): the committed file must
 * be what they generate now, and what the OpenAPI document the service
 * publishes generates too.
 */
const committed = readFileSync(new URL(`../../../${API_TYPES_PATH}`, import.meta.url), 'utf8')
const stale = `${API_TYPES_PATH} no longer matches the service's schemas: run \`${REGENERATE_COMMAND}\` and commit the result`

describe('generated API types', () => {
  it('api-types.ts is what the service\'s TypeBox schemas generate', () => {
    expect(committed, stale).toBe(apiTypesSource())
  })

  it('and what the schemas of the service\'s OpenAPI document generate: the routes publish those very schemas', async () => {
    const app = await buildTestApp()
    interface Operation {
      requestBody: { content: Record<string, { schema: unknown }> }
      responses: Record<string, { content: Record<string, { schema: unknown }> }>
    }
    // The document as GET /openapi.json serves it.
    const document = app.swagger() as unknown as { paths: Record<string, { post: Operation }> }
    await app.close()
    const json = (operation: Operation | undefined, status?: string): unknown => {
      const content = status === undefined ? operation?.requestBody.content : operation?.responses[status]?.content
      return content?.['application/json']?.schema
    }
    const identify = document.paths['/api/v1/identify']?.post
    const batch = document.paths['/api/v1/identify/batch']?.post
    const published: ApiSchemas = {
      identifyBody: json(identify),
      identifySuccess: json(identify, '200'),
      batchBody: json(batch),
      batchSuccess: json(batch, '200'),
      errorEnvelope: json(identify, '400')
    }
    expect(committed, stale).toBe(apiTypesSource(published))
  })

  it('types the shapes the docs show (docs/api.md#identify-operators)', () => {
    const body = {
      user_id: 'u1',
      datafast_visitor_id: '3f2b8c1e-9a4d-4f6b-8e2a-1c5d7e9f0a1b',
      plan: 'pro',
      seats: 3,
      address: { city: 'London', tags: ['a', { b: null }] },
      $set_once: { first_source: 'ads' },
      $unset: ['trial_ends']
    } satisfies IdentifyBody
    // The checks are the compiler's (npm run typecheck runs over this file).
    const typed = (_body: IdentifyBody): void => {}
    // @ts-expect-error an array directly inside an array is refused (docs/api.md#arrays-inside-arrays)
    typed({ user_id: 'u1', datafast_visitor_id: body.datafast_visitor_id, matrix: [[1, 2]] })
    // @ts-expect-error user_id is required
    typed({ datafast_visitor_id: body.datafast_visitor_id })
  })
})

describe('the JSON Schema emitter', () => {
  it('writes objects as interfaces, unions, literals, nullable fields, arrays and index signatures, naming shared schemas', () => {
    const Point = { type: 'object', properties: { x: { type: 'number' }, y: { type: 'integer', description: 'down' } }, required: ['x'], additionalProperties: false }
    const Shape = {
      type: 'object',
      properties: { kind: { anyOf: [{ const: 'a' }, { const: 'b' }] }, at: Point, path: { type: 'array', items: Point }, name: { type: ['string', 'null'] } },
      required: ['kind', 'at'],
      additionalProperties: { type: 'boolean' }
    }
    expect(emitTypes([{ name: 'Point', schema: Point }, { name: 'Shape', schema: Shape, description: 'a shape' }])).toBe([
      'export interface Point {',
      '  x: number',
      '  /** down */',
      '  y?: number',
      '}',
      '',
      '/** a shape */',
      'export interface Shape {',
      '  kind: \'a\' | \'b\'',
      '  at: Point',
      '  path?: Point[]',
      '  name?: string | null',
      '  [field: string]: boolean | \'a\' | \'b\' | Point | Point[] | undefined | string | null',
      '}',
      ''
    ].join('\n'))
  })

  it('refuses what it cannot translate instead of emitting a wrong type', () => {
    expect(() => emitTypes([{ name: 'Linked', schema: { $ref: '#/components/schemas/Other' } }])).toThrow(/does not handle "\$ref"/)
    expect(() => emitTypes([{ name: 'Both', schema: { allOf: [{ type: 'string' }] } }])).toThrow(/does not handle "allOf"/)
    expect(() => emitTypes([{ name: 'Odd', schema: { type: 'bigint' } }])).toThrow(/does not handle type "bigint"/)
  })
})
