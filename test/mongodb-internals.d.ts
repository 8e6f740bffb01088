// The driver's Connection class is internal and ships no types; the test of
// the driver patch (test/mongodb-driver.test.ts) needs only this much of it.
declare module 'mongodb/lib/cmap/connection.js' {
  import type { Socket } from 'node:net'

  export class Connection {
    constructor (socket: Socket, options: { id: number })
    command (namespace: { db: string, collection: string }, command: Record<string, unknown>, options: Record<string, never>): Promise<unknown>
  }
}
