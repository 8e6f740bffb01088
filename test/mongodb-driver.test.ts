import { once } from 'node:events'
import { createServer, connect, type AddressInfo, type Socket } from 'node:net'
import { MongoNetworkError } from 'mongodb'
import { Connection } from 'mongodb/lib/cmap/connection.js'
import { afterAll, describe, expect, it } from 'vitest'

/**
 * patches/npm/mongodb+7.8.0.patch, applied by `npm ci`: without it, a command
 * whose socket is destroyed before it drains waits forever, since a destroyed
 * socket emits neither 'drain' nor 'error'. The server monitor hits this
 * when the database closes its connections at shutdown and then never checks
 * the server again, so the service stays at 503 after the database is back
 * (test/outage.test.ts caught it). The driver's 7.9.0 has the same code.
 */
const server = createServer((peer) => { peer.pause() })
server.listen(0, '127.0.0.1')
await once(server, 'listening')

afterAll(() => { server.close() })

async function connectedSocket (): Promise<Socket> {
  const socket = connect((server.address() as AddressInfo).port, '127.0.0.1')
  await once(socket, 'connect')
  return socket
}

/** The command's outcome, or 'still waiting' when it has not settled within 2 s. */
async function settleWithin2s (command: Promise<unknown>): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined
  const waiting = new Promise((resolve) => { timer = setTimeout(() => { resolve('still waiting after 2 s') }, 2000) })
  try {
    return await Promise.race([command.then(() => 'answered', (error: unknown) => error), waiting])
  } finally {
    clearTimeout(timer)
  }
}

describe('the mongodb driver, as patched', () => {
  it('fails a command written to a socket destroyed before its close event', async () => {
    const socket = await connectedSocket()
    const connection = new Connection(socket, { id: 1 })
    socket.destroy()
    expect(await settleWithin2s(connection.command({ db: 'admin', collection: '$cmd' }, { ping: 1 }, {}))).toBeInstanceOf(MongoNetworkError)
  })

  it('fails a command whose socket is destroyed while it waits for the write to drain', async () => {
    const socket = await connectedSocket()
    const connection = new Connection(socket, { id: 2 })
    // The peer reads nothing, so a 15 MB command stays in the socket's buffer and the driver waits for 'drain'.
    const command = connection.command({ db: 'admin', collection: '$cmd' }, { ping: 1, filler: 'x'.repeat(15 * 1024 * 1024) }, {})
    const deadline = Date.now() + 2000
    while (!socket.writableNeedDrain && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    expect(socket.writableNeedDrain).toBe(true)
    socket.destroy()
    expect(await settleWithin2s(command)).toBeInstanceOf(MongoNetworkError)
  })
})
