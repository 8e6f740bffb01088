import type { LightMyRequestResponse } from 'fastify'
import { expect } from 'vitest'
import type { App } from '../src/app.js'
import { createTestToken, createTestWebsite, type TestWebsite } from './helper.js'

/** Account API calls through inject; a string payload is sent raw as JSON. */
export async function adminCall (app: App, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, token: string | undefined, payload?: unknown): Promise<LightMyRequestResponse> {
  return await app.inject({
    method,
    url: `/api/v1/admin${path}`,
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(typeof payload === 'string' ? { 'content-type': 'application/json' } : {})
    },
    ...(payload === undefined ? {} : { payload: payload as string })
  })
}

/** The data of a success envelope, after checking the status and the envelope. */
export function dataOf (response: LightMyRequestResponse, status = 200): Record<string, unknown> {
  expect(response.statusCode, response.body).toBe(status)
  const json = response.json<{ status: string, data: Record<string, unknown> }>()
  expect(Object.keys(json)).toEqual(['status', 'data'])
  expect(json.status).toBe('success')
  return json.data
}

export interface Owner extends TestWebsite {
  /** A `*` token of the account, for every website. */
  owner: string
  ownerId: string
}

/** An account with one website, its df_ key and a `*` owner token, as the CLI bootstrap makes them. */
export async function createOwner (app: App, options: { accountId?: string } = {}): Promise<Owner> {
  const site = await createTestWebsite(app, options)
  const { id, token } = await createTestToken(app, { accountId: site.accountId, permissions: ['*'] })
  return { ...site, owner: token, ownerId: id }
}

export const W_KEYS = ['id', 'domain', 'cookieless', 'suspended', 'createdAt']
export const K_KEYS = ['id', 'websiteId', 'name', 'displayPrefix', 'createdAt', 'revokedAt']
export const T_KEYS = ['id', 'name', 'permissions', 'websiteIds', 'displayPrefix', 'createdAt', 'expiresAt', 'revokedAt']
export const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/
