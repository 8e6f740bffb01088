import type { LightMyRequestResponse } from 'fastify'
import { afterAll, describe, expect, it } from 'vitest'
import { buildTestApp, createTestToken, createTestWebsite, expectError, snapshot } from './helper.js'
import { adminCall, createOwner, dataOf } from './admin-helper.js'

/*
 * Hostile and malformed calls of the Account API (docs/api.md#account-api),
 * in the manner of test/abuse.test.ts: each case checks its status, the one
 * error envelope, and that nothing at all changed in the database.
 */

const app = await buildTestApp()
afterAll(async () => { await app.close() })

const site = await createOwner(app)
/** A token of the same account, with the permissions it needs here but limited to the account's one website. */
const limited = await createTestToken(app, { accountId: site.accountId, permissions: ['api-keys:write', 'identify:write', 'websites:write'], websiteIds: [site.websiteId] })
const stranger = await createOwner(app)

/** Sends the call, expects the status in the envelope and an untouched database; returns the message. */
async function refused (status: number, call: () => Promise<LightMyRequestResponse>): Promise<string> {
  const before = await snapshot(app)
  const message = expectError(await call(), status)
  expect(await snapshot(app), 'the database changed').toStrictEqual(before)
  return message
}

const idRoutes = (id: string) => [
  ['PATCH', `/websites/${id}`, { suspended: true }],
  ['GET', `/websites/${id}/api-keys`, undefined],
  ['POST', `/websites/${id}/api-keys`, {}],
  ['DELETE', `/api-keys/${id}`, undefined],
  ['DELETE', `/access-tokens/${id}`, undefined]
] as const

describe('ids with query-operator syntax or of the wrong shape', () => {
  it('in the path: 400 naming id, on every route with an id', async () => {
    const ids = ['%7B%22%24ne%22%3Anull%7D', '%24ne', '%24where', `${site.websiteId}%00`, `${site.websiteId}%20`, `%20${site.websiteId}`,
      `${site.websiteId.slice(0, 23)}%C3%A9`, 'null', 'undefined', '000000000000000000000000x', encodeURIComponent('[object Object]')]
    for (const id of ids) {
      for (const [method, path, payload] of idRoutes(id)) {
        expect(await refused(400, async () => await adminCall(app, method, path, site.owner, payload)), `${method} ${path}`).toBe('id must be 24 hexadecimal characters')
      }
    }
  })

  it('a path id longer than any route allows: 414 in the envelope, not a 500', async () => {
    for (const [method, path, payload] of idRoutes('f'.repeat(10_000))) {
      await refused(414, async () => await adminCall(app, method, path, site.owner, payload))
    }
  })

  it('in the body: operator objects in place of ids, permissions, dates, booleans and names get 400', async () => {
    const cases: Array<[string, string, Record<string, unknown>, RegExp]> = [
      ['POST', '/access-tokens', { permissions: [{ $ne: null }] }, /^permissions must be a list/],
      ['POST', '/access-tokens', { permissions: { $in: ['*'] } }, /^permissions must be a list/],
      ['POST', '/access-tokens', { permissions: ['*'], websiteIds: [{ $ne: null }] }, /^websiteIds must be a list/],
      ['POST', '/access-tokens', { permissions: ['*'], websiteIds: { $in: [site.websiteId] } }, /^websiteIds must be a list/],
      ['POST', '/access-tokens', { permissions: ['*'], expiresAt: { $gt: '2030-01-01' } }, /^expiresAt must be an ISO 8601 date/],
      ['POST', '/access-tokens', { permissions: ['*'], name: { $set: 'x' } }, /^name must be/],
      ['POST', '/websites', { domain: { $ne: '' } }, /^domain must be a host name/],
      ['PATCH', `/websites/${site.websiteId}`, { suspended: { $ne: false } }, /^suspended must be true or false/],
      ['PATCH', `/websites/${site.websiteId}`, { $set: { suspended: true } }, /"\$set" is not allowed/],
      ['POST', `/websites/${site.websiteId}/api-keys`, { name: ['a'] }, /^name must be/]
    ]
    for (const [method, path, payload, message] of cases) {
      expect(await refused(400, async () => await adminCall(app, method as 'POST', path, site.owner, payload)), JSON.stringify(payload)).toMatch(message)
    }
  })
})

describe('mass assignment and prototype pollution', () => {
  it('fields the caller does not set (accountId, id, hash, revokedAt, createdAt, prefix) get 400 naming them', async () => {
    const cases: Array<[string, string, Record<string, unknown>]> = [
      ['POST', '/access-tokens', { permissions: ['*'], accountId: stranger.accountId }],
      ['POST', '/access-tokens', { permissions: ['*'], id: stranger.ownerId }],
      ['POST', '/access-tokens', { permissions: ['*'], hash: 'a'.repeat(64) }],
      ['POST', '/access-tokens', { permissions: ['*'], revokedAt: null }],
      ['POST', `/websites/${site.websiteId}/api-keys`, { websiteId: stranger.websiteId }],
      ['POST', `/websites/${site.websiteId}/api-keys`, { prefix: 'df_aaaaaa' }],
      ['POST', '/websites', { domain: 'x.example', accountId: stranger.accountId }],
      ['PATCH', `/websites/${site.websiteId}`, { accountId: stranger.accountId }],
      ['PATCH', `/websites/${site.websiteId}`, { createdAt: '2001-01-01' }]
    ]
    for (const [method, path, payload] of cases) {
      const field = Object.keys(payload).at(-1)!
      expect(await refused(400, async () => await adminCall(app, method as 'POST', path, site.owner, payload)), field).toContain(`"${field}" is not allowed`)
    }
  })

  it('__proto__ and constructor members get 400 and leave Object.prototype untouched', async () => {
    const names = Object.getOwnPropertyNames(Object.prototype).sort()
    const payloads: Array<[string, string]> = [
      ['/access-tokens', '{"permissions":["identify:write"],"__proto__":{"permissions":["*"],"websiteIds":[]}}'],
      ['/access-tokens', '{"__proto__":{"polluted":1},"permissions":["identify:write"]}'],
      ['/access-tokens', '{"permissions":["identify:write"],"constructor":{"prototype":{"polluted":1}}}'],
      ['/websites', '{"domain":"x.example","__proto__":{"polluted":1}}'],
      [`/websites/${site.websiteId}/api-keys`, '{"__proto__":{"name":"x"}}']
    ]
    for (const [path, payload] of payloads) {
      expect(await refused(400, async () => await adminCall(app, 'POST', path, limited.token, payload)), payload).toMatch(/"(__proto__|constructor)" is not allowed/)
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(({} as Record<string, unknown>).permissions).toBeUndefined()
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toStrictEqual(names)
  })

  it('a repeated member is refused before any rule reads it, so no reader in front can see another value', async () => {
    const payload = `{"permissions":["identify:write"],"websiteIds":["${site.websiteId}"],"permissions":["*"]}`
    expect(await refused(400, async () => await adminCall(app, 'POST', '/access-tokens', limited.token, payload))).toMatch(/repeats the key "permissions"/)
    const allWebsites = `{"permissions":["identify:write"],"websiteIds":["${site.websiteId}"],"websiteIds":[]}`
    expect(await refused(400, async () => await adminCall(app, 'POST', '/access-tokens', limited.token, allWebsites))).toMatch(/repeats the key "websiteIds"/)
  })
})

describe('strings the database cannot store, and look-alike permissions', () => {
  it('NUL and unpaired surrogates in a name or a domain get 400', async () => {
    for (const text of ['a\\u0000b', '\\u0000', 'a\\ud800b', '\\udc00', 'x\\ud83d']) {
      expect(await refused(400, async () => await adminCall(app, 'POST', `/websites/${site.websiteId}/api-keys`, site.owner, `{"name":"${text}"}`))).toMatch(/^name must be/)
      expect(await refused(400, async () => await adminCall(app, 'POST', '/access-tokens', site.owner, `{"permissions":["*"],"name":"${text}"}`))).toMatch(/^name must be/)
      expect(await refused(400, async () => await adminCall(app, 'POST', '/websites', site.owner, `{"domain":"${text}.example"}`))).toMatch(/^domain must be/)
    }
  })

  it('permissions in another case, with white space, with wildcards or as prefixes get 400 naming them', async () => {
    for (const permission of ['IDENTIFY:WRITE', '* ', ' *', 'identify:*', 'api-keys', 'api-keys:write\u0000', '**', 'websites:read,websites:write']) {
      const message = await refused(400, async () => await adminCall(app, 'POST', '/access-tokens', site.owner, { permissions: [permission] }))
      expect(message, JSON.stringify(permission)).toMatch(/^permission ".*" is unknown/)
    }
  })

  it('a domain with a scheme, a port, a path, a user or a trailing dot gets 400', async () => {
    for (const domain of ['http://x.example', 'x.example:443', 'x.example/path', 'user@x.example', 'x.example.', '-x.example', 'x_y.example', '*.example', '.']) {
      expect(await refused(400, async () => await adminCall(app, 'POST', '/websites', site.owner, { domain })), domain).toMatch(/^domain must be a host name/)
    }
  })
})

describe('oversized and malformed bodies', () => {
  it('100,000 website ids get 413 at the body limit; 101 get 400 naming the limit', async () => {
    const many = (count: number) => Array.from({ length: count }, (_, index) => index.toString(16).padStart(24, '0'))
    await refused(413, async () => await adminCall(app, 'POST', '/access-tokens', site.owner, { permissions: ['*'], websiteIds: many(100_000) }))
    expect(await refused(400, async () => await adminCall(app, 'POST', '/access-tokens', site.owner, { permissions: ['*'], websiteIds: many(101) })))
      .toMatch(/at most 100/)
  })

  it('hundreds of unknown permissions get a 400 naming the first, briefly', async () => {
    const permissions = Array.from({ length: 900 }, (_, index) => `p${String(index)}:${'x'.repeat(60)}`)
    const message = await refused(400, async () => await adminCall(app, 'POST', '/access-tokens', site.owner, { permissions }))
    expect(message).toMatch(/^permission "p0:x{37}" is unknown/)
    expect(message.length).toBeLessThan(600)
  })

  it('bodies that are not one JSON object get 400; other content types 415', async () => {
    for (const payload of ['[]', 'null', '"x"', '42', '{"permissions":', '{"permissions":["*"]}x']) {
      await refused(400, async () => await adminCall(app, 'POST', '/access-tokens', site.owner, payload))
    }
    await refused(415, async () => await app.inject({
      method: 'POST',
      url: '/api/v1/admin/access-tokens',
      headers: { authorization: `Bearer ${site.owner}`, 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'permissions=*'
    }))
  })

  it('an unauthenticated caller gets 401 whatever the body, and learns nothing of its rules', async () => {
    for (const payload of ['{"permissions":["nope"]}', '[]', '{"domain":"https://x"}']) {
      for (const path of ['/access-tokens', '/websites']) {
        const message = await refused(401, async () => await adminCall(app, 'POST', path, undefined, payload))
        expect(message).not.toMatch(/permission|domain|JSON/)
      }
    }
  })
})

describe('credentials of the wrong party', () => {
  it('a token of another account gets 404 for this account\'s ids, even with them in its website list', async () => {
    const { token: listed } = await createTestToken(app, { accountId: stranger.accountId, permissions: ['*'], websiteIds: [site.websiteId] })
    for (const token of [stranger.owner, listed]) {
      for (const [method, path, payload] of [...idRoutes(site.websiteId).slice(0, 3), ['DELETE', `/api-keys/${site.keyId}`, undefined], ['DELETE', `/access-tokens/${site.ownerId}`, undefined]] as const) {
        await refused(404, async () => await adminCall(app, method, path, token, payload))
      }
      await refused(404, async () => await adminCall(app, 'POST', '/access-tokens', token, { permissions: ['identify:write'], websiteIds: [site.websiteId] }))
    }
    const { websites } = dataOf(await adminCall(app, 'GET', '/websites', listed)) as { websites: unknown[] }
    expect(websites).toEqual([])
  })

  it('a limited token cannot widen its reach: no website creation, no token for every website, nothing outside its list', async () => {
    const sibling = await createTestWebsite(app, { accountId: site.accountId })
    await refused(403, async () => await adminCall(app, 'POST', '/websites', limited.token, { domain: 'mine.example' }))
    await refused(403, async () => await adminCall(app, 'POST', '/access-tokens', limited.token, { permissions: ['identify:write'] }))
    await refused(403, async () => await adminCall(app, 'POST', '/access-tokens', limited.token, { permissions: ['identify:write'], websiteIds: [sibling.websiteId] }))
    await refused(404, async () => await adminCall(app, 'DELETE', `/access-tokens/${site.ownerId}`, limited.token))
    await refused(404, async () => await adminCall(app, 'PATCH', `/websites/${sibling.websiteId}`, limited.token, { suspended: true }))
    await refused(404, async () => await adminCall(app, 'DELETE', `/api-keys/${sibling.keyId}`, limited.token))
  })

  it('a revoked or expired token gets 401 on every route; a df_ key 403', async () => {
    const revoked = await createTestToken(app, { accountId: site.accountId, permissions: ['*'] })
    await app.repositories.credentials.revokeAccountToken(revoked.id)
    const expired = await createTestToken(app, { accountId: site.accountId, permissions: ['*'], expiresAt: new Date(Date.now() - 1000) })
    const everyRoute = [...idRoutes(site.websiteId), ['GET', '/websites', undefined], ['POST', '/websites', { domain: 'x.example' }],
      ['GET', '/access-tokens', undefined], ['POST', '/access-tokens', { permissions: ['*'] }]] as const
    for (const [method, path, payload] of everyRoute) {
      await refused(401, async () => await adminCall(app, method, path, revoked.token, payload))
      await refused(401, async () => await adminCall(app, method, path, expired.token, payload))
      await refused(403, async () => await adminCall(app, method, path, site.key, payload))
    }
  })
})
