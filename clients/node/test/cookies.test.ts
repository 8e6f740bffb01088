import { once } from 'node:events'
import { createServer, type IncomingMessage } from 'node:http'
import Fastify from 'fastify'
import { afterAll, describe, expect, it } from 'vitest'
import { visitorId } from '../../../test/helper.js'
import { cookieValue, IdentifyClient, visitorIdOf, type IdentifyError } from '../src/index.js'
import { serveTestApp, singleRequests, storedUserIds } from './helpers.js'

/**
 * The request helpers read the visitor id from the datafast_visitor_id
 * cookie, as a cookie parser left it or from the Cookie header, and skip a
 * request without one; with a Fastify route and a plain Node handler (what
 * Express's req is) in front of the real service.
 */
const { app, site, url, requests } = await serveTestApp()
afterAll(async () => { await app.close() })

describe('reading the cookie', () => {
  const id = '3f2b8c1e-9a4d-4f6b-8e2a-1c5d7e9f0a1b'

  it('finds the cookie among others, URL-decoded, unquoted, the first of its name', () => {
    expect(cookieValue(`theme=dark; datafast_visitor_id=${id}; lang=en`, 'datafast_visitor_id')).toBe(id)
    expect(cookieValue(`datafast_visitor_id=${id.replaceAll('-', '%2D')}`, 'datafast_visitor_id')).toBe(id)
    expect(cookieValue(`datafast_visitor_id="${id}"`, 'datafast_visitor_id')).toBe(id)
    expect(cookieValue(`datafast_visitor_id=${id};datafast_visitor_id=other`, 'datafast_visitor_id')).toBe(id)
    expect(cookieValue('x_datafast_visitor_id=a; datafast_visitor_idx=b', 'datafast_visitor_id')).toBeUndefined()
    // Not percent-encoding: kept as sent, and the service's 400 will say what is wrong with it.
    expect(cookieValue('datafast_visitor_id=100%', 'datafast_visitor_id')).toBe('100%')
    expect(cookieValue('', 'datafast_visitor_id')).toBeUndefined()
  })

  it('prefers what a cookie parser left in req.cookies, else reads the header; nothing or an empty value is no visitor', () => {
    expect(visitorIdOf({ headers: { cookie: 'datafast_visitor_id=from-header' }, cookies: { datafast_visitor_id: id } })).toBe(id)
    expect(visitorIdOf({ headers: { cookie: `datafast_visitor_id=${id}` }, cookies: {} })).toBe(id)
    expect(visitorIdOf({ headers: { cookie: ['a=b', `datafast_visitor_id=${id}`] } })).toBe(id)
    expect(visitorIdOf({ headers: {} })).toBeUndefined()
    expect(visitorIdOf({ headers: { cookie: 'datafast_visitor_id=' }, cookies: { datafast_visitor_id: '' } })).toBeUndefined()
    expect(visitorIdOf({ headers: {}, cookies: { datafast_visitor_id: 42 } })).toBeUndefined()
  })
})

describe('request helpers in web frameworks', () => {
  const errors: IdentifyError[] = []
  const client = new IdentifyClient({ url, key: site.key, flushInterval: 60_000, onError: (error) => { errors.push(error) } })
  afterAll(async () => { await client.shutdown() })

  it('Fastify: identifyRequest() sends the call with the cookie\'s visitor id, and skips a request without one', async () => {
    const web = Fastify()
    web.post('/login', async (request) => await client.identifyRequest(request, { user_id: 'fastify-user', plan: 'pro' }))
    const address = await web.listen({ host: '127.0.0.1', port: 0 })
    try {
      const login = `${address}/login`
      const vid = visitorId()
      const start = requests.length
      const withCookie = await fetch(login, { method: 'POST', headers: { cookie: `theme=dark; datafast_visitor_id=${vid.replaceAll('-', '%2D')}` } })
      const identified = await withCookie.json() as { skipped: boolean, result?: { action: string } }
      expect(identified).toMatchObject({ skipped: false, result: { message: 'User profile created successfully', action: 'created' } })
      const without = await fetch(login, { method: 'POST', headers: { cookie: 'theme=dark' } })
      expect(await without.json()).toEqual({ skipped: true })
      expect(singleRequests(requests.slice(start))).toHaveLength(1)
      const profile = await app.mongo.db.collection<{ visitorIds: string[] }>('profiles').findOne({ userId: 'fastify-user' })
      expect(profile?.visitorIds).toEqual([vid])
    } finally {
      await web.close()
    }
  })

  it('a Node or Express handler: enqueueRequest() queues the call, from req.cookies or the header, and skips one without a visitor', async () => {
    const vids = [visitorId(), visitorId()]
    const outcomes: unknown[] = []
    const server = createServer((req: IncomingMessage & { cookies?: Record<string, string> }, res) => {
      // What cookie-parser does in Express, for the requests that ask for it.
      if (req.headers['x-parse-cookies'] === 'yes') req.cookies = { datafast_visitor_id: vids[1] ?? '' }
      outcomes.push(client.enqueueRequest(req, { user_id: `node-user-${String(outcomes.length)}` }))
      res.end()
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    try {
      const login = `http://127.0.0.1:${String((server.address() as { port: number }).port)}/login`
      await fetch(login, { method: 'POST', headers: { cookie: `datafast_visitor_id=${vids[0] ?? ''}` } })
      await fetch(login, { method: 'POST', headers: { 'x-parse-cookies': 'yes' } })
      await fetch(login, { method: 'POST' })
      expect(outcomes).toEqual([{ skipped: false, queued: true }, { skipped: false, queued: true }, { skipped: true }])
      await client.flush()
      expect((await storedUserIds(app, site)).filter((id) => id.startsWith('node-user-'))).toEqual(['node-user-0', 'node-user-1'])
      const linked = await app.mongo.db.collection<{ userId: string, visitorIds: string[] }>('profiles').find({ userId: { $in: ['node-user-0', 'node-user-1'] } }).sort({ userId: 1 }).toArray()
      expect(linked.map((profile) => profile.visitorIds)).toEqual([[vids[0]], [vids[1]]])
      expect(errors).toEqual([])
    } finally {
      // fetch keeps its connections open for reuse; close() alone would wait for them.
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    }
  })
})
