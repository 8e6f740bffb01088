import { afterAll, describe, expect, it } from 'vitest'
import { buildTestApp, createTestWebsite, identify, visitorId } from './helper.js'

const app = await buildTestApp()
afterAll(async () => { await app.close() })

describe('smoke', () => {
  it('creates then updates then leaves unchanged', async () => {
    const site = await createTestWebsite(app)
    const vid = visitorId()
    const first = await identify(app, { auth: site.key, body: { user_id: 'u1', datafast_visitor_id: vid, name: 'Ada' } })
    expect(first.statusCode).toBe(200)
    expect(first.json().data.action).toBe('created')
    const second = await identify(app, { auth: site.key, body: { user_id: 'u1', datafast_visitor_id: vid, name: 'Ada L' } })
    expect(second.json().data.action).toBe('updated')
    const third = await identify(app, { auth: site.key, body: { user_id: 'u1', datafast_visitor_id: vid, name: 'Ada L' } })
    expect(third.json().data.action).toBe('unchanged')
    expect(third.json().data.profileId).toBe(first.json().data.profileId)
  })
})
