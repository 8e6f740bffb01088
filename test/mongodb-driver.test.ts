import { once } from 'node:events'
import { createServer, connect, type AddressInfo } from 'node:net'
import { Connection } from 'mongodb/lib/cmap/connection.js'
import { afterAll, describe, expect, it } from 'vitest'

/**
 * patches/mongodb+7.8.0.patch, applied by `npm ci`: without it, a command
 * written to a socket that is destroyed but has not yet emitted 'close'
 * waits forever. The server monitor hits exactly that when the database
 * closes its connections at shutdown, and then never checks the server again,
 * so the service stays at 503 after the database is back (test/outage.test.ts
 * caught it). The driver's 7.9.0 has the same code.
 */
const server = createServer(() => {})
server.listen(0, '127.0.0.1')
await once(server, 'listening')

afterAll(() => { server.close() })

describe('the mongodb driver, as patched', () => {
  it('fails a command on a socket destroyed before its close event instead of waiting forever', async () => {
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1')
    await once(socket, 'connect')
    const connection = new Connection(socket, { id: 1 })
    socket.destroy()
    const outcome = await Promise.race([
      connection.command({ db: 'admin', collection: '$cmd' }, { ping: 1 }, {}).then(() => 'answered', (error: unknown) => (error as Error).message),
      new Promise((resolve) => setTimeout(() => { resolve('still waiting after 2 s') }, 2000))
    ])
    expect(outcome).toMatch(/^connection 1 to .* closed$/)
  })
})
