import { afterAll, describe, expect, it } from 'vitest'
import { DEFAULT_USER_ID_DENYLIST, NIL_UUID } from '../src/domain/identify.js'
import { buildTestApp, createTestWebsite, expectError, identify, visitorId } from './helper.js'

/* Placeholder user ids and the nil visitor id are refused: docs/api.md#identify-placeholder-ids. */

const app = await buildTestApp()
afterAll(async () => { await app.close() })

async function profileCount (): Promise<number> {
  return await app.mongo.db.collection('profiles').countDocuments()
}

describe('placeholder user ids', () => {
  it.each([...DEFAULT_USER_ID_DENYLIST, 'UNDEFINED', ' Null ', '\tGuest\n', '[Object Object]', 'NaN'])('refuses %j with a 400 that says why, storing nothing', async (userId) => {
    const site = await createTestWebsite(app)
    const before = await profileCount()
    const reply = await identify(app, { auth: site.key, body: { user_id: userId, datafast_visitor_id: visitorId(), name: 'Ada' } })
    expectError(reply, 400)
    expect(reply.json().error.message).toMatch(/user_id is a placeholder/)
    expect(await profileCount()).toBe(before)
  })

  it.each(['undefined1', 'guest-42', 'nullable', '00', 'my email', 'ids'])('accepts %j, which only contains a placeholder word', async (userId) => {
    const site = await createTestWebsite(app)
    const reply = await identify(app, { auth: site.key, body: { user_id: userId, datafast_visitor_id: visitorId() } })
    expect(reply.statusCode, reply.body).toBe(200)
  })

  it('takes USER_ID_DENYLIST as the whole list, and an empty value as no list', async () => {
    const custom = await buildTestApp({ USER_ID_DENYLIST: 'nobody, Unknown' })
    const none = await buildTestApp({ USER_ID_DENYLIST: '' })
    try {
      for (const [target, userId, status] of [[custom, 'UNKNOWN', 400], [custom, 'undefined', 200], [none, 'undefined', 200], [none, 'guest', 200]] as const) {
        const site = await createTestWebsite(target)
        const reply = await identify(target, { auth: site.key, body: { user_id: userId, datafast_visitor_id: visitorId() } })
        expect(reply.statusCode, `${userId}: ${reply.body}`).toBe(status)
      }
    } finally {
      await custom.close()
      await none.close()
    }
  })
})

describe('the nil visitor id', () => {
  it('is refused with a 400 naming datafast_visitor_id, storing nothing', async () => {
    const site = await createTestWebsite(app)
    const before = await profileCount()
    const reply = await identify(app, { auth: site.key, body: { user_id: 'user-1', datafast_visitor_id: NIL_UUID } })
    expectError(reply, 400)
    expect(reply.json().error.message).toMatch(/datafast_visitor_id must not be the nil UUID/)
    expect(await profileCount()).toBe(before)
  })
})
