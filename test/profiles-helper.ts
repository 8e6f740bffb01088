import { expect } from 'vitest'
import type { LightMyRequestResponse } from 'fastify'
import type { App } from '../src/app.js'
import type { Profile } from '../src/schemas/profiles.js'
import { identify, type TestWebsite } from './helper.js'

/** P as it travels: the dates as ISO 8601 strings. */
export type ProfileJson = Omit<Profile, 'createdAt' | 'updatedAt'> & { createdAt: string, updatedAt: string }

export const P_KEYS = ['id', 'websiteId', 'userId', 'metadata', 'visitorIds', 'createdAt', 'updatedAt']

/** A call of a profile route through inject; `query` may hold websiteId, user_id, limit, cursor. */
export async function profilesCall (app: App, options: {
  method?: 'GET' | 'DELETE'
  path: string
  auth?: string
  query?: Record<string, string>
}): Promise<LightMyRequestResponse> {
  return await app.inject({
    method: options.method ?? 'GET',
    url: `/api/v1${options.path}`,
    query: options.query ?? {},
    headers: options.auth === undefined ? {} : { authorization: `Bearer ${options.auth}` }
  })
}

/** The profile of a 200 answer, checked to be exactly P. */
export function profileOf (response: LightMyRequestResponse): ProfileJson {
  expect(response.statusCode, response.body).toBe(200)
  const body = response.json<{ status: string, data: { profile: ProfileJson } }>()
  expect(body.status).toBe('success')
  expect(Object.keys(body.data)).toEqual(['profile'])
  expect(Object.keys(body.data.profile)).toEqual(P_KEYS)
  return body.data.profile
}

/** Every profile of a website, following nextCursor until it is null. */
export async function walkProfiles (app: App, auth: string, options: { limit?: number, query?: Record<string, string>, between?: () => Promise<void> } = {}): Promise<ProfileJson[]> {
  const seen: ProfileJson[] = []
  let cursor: string | null = null
  do {
    const query: Record<string, string> = { ...options.query, ...(options.limit === undefined ? {} : { limit: String(options.limit) }), ...(cursor === null ? {} : { cursor }) }
    const response = await profilesCall(app, { path: '/profiles', auth, query })
    expect(response.statusCode, response.body).toBe(200)
    const { data } = response.json<{ data: { profiles: ProfileJson[], nextCursor: string | null } }>()
    seen.push(...data.profiles)
    cursor = data.nextCursor
    await options.between?.()
  } while (cursor !== null)
  return seen
}

/** An identify call that must succeed; returns its profileId and action. */
export async function identified (app: App, site: TestWebsite, userId: string, visitor: string, metadata: Record<string, unknown> = {}): Promise<{ profileId: string, action: string }> {
  const response = await identify(app, { auth: site.key, body: { user_id: userId, datafast_visitor_id: visitor, ...metadata } })
  expect(response.statusCode, response.body).toBe(200)
  return response.json<{ data: { profileId: string, action: string } }>().data
}
