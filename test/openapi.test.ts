import { Validator } from '@seriousme/openapi-schema-validator'
import { afterAll, describe, expect, it } from 'vitest'
import { identifyRules } from '../src/config.js'
import { identifyBodySchema } from '../src/schemas/identify.js'
import { buildTestApp } from './helper.js'

const app = await buildTestApp()
afterAll(async () => { await app.close() })

interface Operation {
  operationId: string
  security: Record<string, string[]>[]
  parameters: { name: string, in: string, required?: boolean, schema: { pattern?: string } }[]
  requestBody: { required: boolean, content: Record<string, { schema: Record<string, unknown>, example?: unknown }> }
  responses: Record<string, { description: string, content: Record<string, { schema: { properties: Record<string, unknown> } }> }>
}

async function openapiDocument () {
  const response = await app.inject('/openapi.json')
  expect(response.statusCode).toBe(200)
  expect(response.headers['content-type']).toMatch(/^application\/json/)
  return response.json()
}

describe('GET /openapi.json', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const document = await openapiDocument()
    const result = await new Validator().validate(document)
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)
    expect(document.openapi).toBe('3.1.0')
  })

  it('describes the identify operation fully', async () => {
    const document = await openapiDocument()
    expect(document.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' })
    const operation = document.paths['/api/v1/identify'].post as Operation
    expect(operation.operationId).toBe('identify')
    expect(operation.security).toEqual([{ bearerAuth: [] }])

    const websiteId = operation.parameters.find((parameter) => parameter.name === 'websiteId')
    expect(websiteId).toMatchObject({ in: 'query', schema: { pattern: '^[0-9a-fA-F]{24}$' } })
    expect(websiteId?.required ?? false).toBe(false)

    const body = operation.requestBody.content['application/json']
    expect(operation.requestBody.required).toBe(true)
    // The very schema the route validates with; @fastify/swagger moves its examples up to the media type.
    const { examples, ...rules } = JSON.parse(JSON.stringify(identifyBodySchema(identifyRules(app.config)))) as { examples: unknown[] }
    expect(body?.schema).toMatchObject(rules)
    expect(body?.schema.required).toEqual(['user_id', 'datafast_visitor_id'])
    expect(body?.example).toEqual(examples[0])
    // And it states the rules of docs/api.md#identify, not just whatever the code builds.
    expect(body?.schema).toMatchObject({
      type: 'object',
      maxProperties: 102,
      properties: {
        user_id: { type: 'string', minLength: 1, maxLength: 255 },
        datafast_visitor_id: { type: 'string', pattern: expect.stringContaining('{8}-') }
      },
      propertyNames: { minLength: 1, maxLength: 128, not: { enum: ['__proto__', 'constructor', 'prototype'] } }
    })
    expect(String(body?.schema.description)).toMatch(/5 deep.*100 fields.*32768 bytes.*500 fields/s)

    const success = operation.responses['200']?.content['application/json']?.schema
    expect(Object.keys(success?.properties ?? {})).toEqual(['status', 'data'])
    for (const status of ['400', '401', '403', '404', '409', '413', '415', '429', '500', '503']) {
      const response = operation.responses[status]
      expect(response?.description, status).not.toBe('Default Response')
      expect(Object.keys(response?.content['application/json']?.schema.properties ?? {}), status).toEqual(['status', 'error'])
    }
  })

  it('leaves out the routes that are not part of the API', async () => {
    const document = await openapiDocument()
    expect(Object.keys(document.paths).sort()).toEqual(['/api/v1/identify', '/healthz', '/readyz'])
    expect(Object.keys(document.paths['/api/v1/identify'])).toEqual(['post'])
  })
})
