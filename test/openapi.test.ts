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
      maxProperties: 104,
      properties: {
        user_id: { type: 'string', minLength: 1, maxLength: 255 },
        datafast_visitor_id: { type: 'string', pattern: expect.stringContaining('{8}-') },
        // docs/api.md#identify-operators: the only "$" keys.
        $set_once: { type: 'object', maxProperties: 100, propertyNames: { pattern: expect.stringContaining('^[^$') } },
        $unset: { type: 'array', maxItems: 100, uniqueItems: true, items: { type: 'string', maxLength: 128 } }
      },
      propertyNames: {
        anyOf: [
          { minLength: 1, maxLength: 128, not: { enum: ['__proto__', 'constructor', 'prototype'] } },
          { enum: ['$set_once', '$unset'] }
        ]
      }
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

  it('describes every profile operation: summary, tag, security, parameters, the answer and every error status', async () => {
    const document = await openapiDocument()
    const operations: Array<[string, string, string, string[], string[]]> = [
      ['/api/v1/profiles/{profileId}', 'get', 'getProfile', ['profileId', 'websiteId'], ['400', '401', '403', '404', '414', '429', '500', '503']],
      ['/api/v1/profiles', 'get', 'listProfiles', ['websiteId', 'user_id', 'limit', 'cursor'], ['400', '401', '403', '404', '429', '500', '503']],
      ['/api/v1/visitors/{visitorId}/profile', 'get', 'getVisitorProfile', ['visitorId', 'websiteId'], ['400', '401', '403', '404', '414', '429', '500', '503']],
      ['/api/v1/profiles/{profileId}', 'delete', 'eraseProfile', ['profileId', 'websiteId'], ['400', '401', '403', '404', '414', '429', '500', '503']]
    ]
    for (const [path, method, operationId, parameters, errors] of operations) {
      const operation = document.paths[path][method] as Operation & { summary: string, tags: string[] }
      expect(operation.operationId).toBe(operationId)
      expect(operation.summary.length, operationId).toBeGreaterThan(10)
      expect(operation.tags).toEqual(['profiles'])
      expect(operation.security).toEqual([{ bearerAuth: [] }])
      expect(operation.parameters.map((parameter) => parameter.name).sort()).toEqual([...parameters].sort())
      expect(Object.keys(operation.responses).sort()).toEqual(['200', ...errors].sort())
      for (const status of errors) {
        expect(operation.responses[status]?.description, `${operationId} ${status}`).not.toBe('Default Response')
        expect(Object.keys(operation.responses[status]?.content['application/json']?.schema.properties ?? {})).toEqual(['status', 'error'])
      }
    }
    const profile = document.paths['/api/v1/profiles/{profileId}'].get.responses['200'].content['application/json'].schema.properties.data.properties.profile
    expect(Object.keys(profile.properties)).toEqual(['id', 'websiteId', 'userId', 'metadata', 'visitorIds', 'createdAt', 'updatedAt'])
    expect(profile.properties.createdAt).toMatchObject({ type: 'string', format: 'date-time' })
    const limit = (document.paths['/api/v1/profiles'].get as Operation).parameters.find((parameter) => parameter.name === 'limit')
    expect(limit?.schema).toMatchObject({ type: 'integer', minimum: 1, maximum: 250, default: 100 })
  })

  it('describes batch identify (docs/api.md#batch-identify): its items are identify bodies, its answer one result per item', async () => {
    const document = await openapiDocument()
    const operation = document.paths['/api/v1/identify/batch'].post as Operation & { tags: string[] }
    expect(operation.operationId).toBe('identifyBatch')
    expect(operation.tags).toEqual(['identify'])
    expect(operation.security).toEqual([{ bearerAuth: [] }])
    expect(operation.parameters.map((parameter) => parameter.name)).toEqual(['websiteId'])
    const items = (operation.requestBody.content['application/json']?.schema as { properties: { items: { items: { anyOf: unknown[] } } } }).properties.items
    expect(items).toMatchObject({ type: 'array', minItems: 1, maxItems: 1000 })
    const { examples, ...rules } = JSON.parse(JSON.stringify(identifyBodySchema(identifyRules(app.config)))) as { examples: unknown[] }
    expect(examples).toHaveLength(1)
    // An identify body, or anything else: a bad item is an error result in a 200, not a schema violation.
    expect(items.items.anyOf).toHaveLength(2)
    expect(items.items.anyOf[0]).toMatchObject(rules)
    expect(items.items.anyOf[1]).not.toHaveProperty('type')
    const data = operation.responses['200']?.content['application/json']?.schema.properties.data as { properties: { counts: { properties: object } } }
    expect(Object.keys(data.properties)).toEqual(['results', 'counts'])
    expect(Object.keys(data.properties.counts.properties)).toEqual(['created', 'updated', 'unchanged', 'skipped', 'failed'])
    for (const status of ['400', '401', '403', '404', '413', '415', '429', '500', '503']) {
      expect(operation.responses[status]?.description, status).not.toBe('Default Response')
    }
  })

  it('links identify\'s answer to the profile routes, each parameter to an existing one (Schemathesis follows them)', async () => {
    const document = await openapiDocument()
    const links: Record<string, { operationId: string, parameters: Record<string, string> }> = document.paths['/api/v1/identify'].post.responses['200'].links
    const byId = new Map<string, Operation>()
    for (const methods of Object.values<Record<string, Operation>>(document.paths)) {
      for (const operation of Object.values(methods)) byId.set(operation.operationId, operation)
    }
    expect(Object.values(links).map((link) => link.operationId).sort()).toEqual(['eraseProfile', 'getProfile', 'getVisitorProfile', 'listProfiles'])
    for (const link of Object.values(links)) {
      const names = byId.get(link.operationId)?.parameters.map((parameter) => parameter.name)
      for (const parameter of Object.keys(link.parameters)) expect(names, `${link.operationId} ${parameter}`).toContain(parameter)
    }
  })

  it('leaves out the routes that are not part of the API', async () => {
    const document = await openapiDocument()
    expect(Object.keys(document.paths).sort()).toEqual([
      '/api/v1/admin/access-tokens',
      '/api/v1/admin/access-tokens/{id}',
      '/api/v1/admin/api-keys/{id}',
      '/api/v1/admin/websites',
      '/api/v1/admin/websites/{id}',
      '/api/v1/admin/websites/{id}/api-keys',
      '/api/v1/identify',
      '/api/v1/identify/batch',
      '/api/v1/profiles',
      '/api/v1/profiles/{profileId}',
      '/api/v1/visitors/{visitorId}/profile',
      '/healthz',
      '/readyz'
    ])
    expect(Object.keys(document.paths['/api/v1/identify'])).toEqual(['post'])
    expect(Object.keys(document.paths['/api/v1/profiles/{profileId}']).sort()).toEqual(['delete', 'get'])
  })

  it('lists every Account API route under the admin tag, with its permission, its id pattern and its answers', async () => {
    const document = await openapiDocument()
    const admin = Object.entries(document.paths as Record<string, Record<string, Operation & { tags: string[], description: string }>>)
      .filter(([path]) => path.startsWith('/api/v1/admin/'))
      .flatMap(([path, operations]) => Object.entries(operations).map(([method, operation]) => ({ route: `${method.toUpperCase()} ${path}`, operation })))
    const permissions = Object.fromEntries(admin.map(({ route, operation }) => [route, /^Permission: `([^`]+)`/.exec(operation.description)?.[1]]))
    expect(permissions).toEqual({
      'GET /api/v1/admin/websites': 'websites:read',
      'POST /api/v1/admin/websites': 'websites:write',
      'PATCH /api/v1/admin/websites/{id}': 'websites:write',
      'GET /api/v1/admin/websites/{id}/api-keys': 'api-keys:read',
      'POST /api/v1/admin/websites/{id}/api-keys': 'api-keys:write',
      'DELETE /api/v1/admin/api-keys/{id}': 'api-keys:write',
      'GET /api/v1/admin/access-tokens': 'api-keys:read',
      'POST /api/v1/admin/access-tokens': 'api-keys:write',
      'DELETE /api/v1/admin/access-tokens/{id}': 'api-keys:write'
    })
    for (const { route, operation } of admin) {
      expect(operation.tags, route).toEqual(['admin'])
      expect(operation.security, route).toEqual([{ bearerAuth: [] }])
      const success = route.startsWith('POST') ? '201' : '200'
      expect(Object.keys(operation.responses[success]?.content['application/json']?.schema.properties ?? {}), route).toEqual(['status', 'data'])
      for (const status of ['401', '403', '429', '500']) {
        expect(Object.keys(operation.responses[status]?.content['application/json']?.schema.properties ?? {}), `${route} ${status}`).toEqual(['status', 'error'])
      }
      if (route.includes('{id}')) {
        expect(operation.parameters.find((parameter) => parameter.name === 'id'), route).toMatchObject({ in: 'path', required: true, schema: { pattern: '^[0-9a-fA-F]{24}$' } })
        expect(operation.responses['404']?.description, route).toMatch(/same answer/)
      }
    }
    expect(Object.keys(document.paths['/api/v1/admin/access-tokens'].post.responses)).toContain('409')
  })
})
