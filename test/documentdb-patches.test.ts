import { randomUUID } from 'node:crypto'
import { MongoClient, MongoServerError } from 'mongodb'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { withDatabaseName } from '../src/storage/mongo-url.js'

/**
 * What each patch in patches/documentdb/ guarantees, checked against the
 * test server (on MongoDB these hold without any patch). Each of these
 * tests fails on an engine built without its patch.
 */
const client = new MongoClient(withDatabaseName(inject('mongoUrl'), `patches_${randomUUID().slice(0, 8)}`), { maxPoolSize: 16 })
afterAll(async () => {
  await client.db().dropDatabase()
  await client.close()
})

describe('upsert-plain-insert.patch (documentdb/documentdb#295)', () => {
  it('racing upserts of one new _id never overwrite each other: every field is kept, the losers retried on a duplicate key', async () => {
    const things = client.db().collection<{ _id: string }>('things')
    const RACERS = 8
    let duplicates = 0
    let rounds = 0
    // Rounds until some upserts of the same new _id raced (a loser got 11000), bounded.
    while (duplicates === 0 && rounds < 50) {
      rounds++
      const _id = `thing-${String(rounds)}`
      await Promise.all(Array.from({ length: RACERS }, async (_, racer) => {
        for (;;) {
          try {
            await things.updateOne({ _id }, { $set: { [`field${String(racer)}`]: racer } }, { upsert: true })
            return
          } catch (error) {
            // MongoDB 4.2+ retries such an upsert itself; a plain INSERT makes the loser see the winner's document next time.
            if (!(error instanceof MongoServerError && error.code === 11000)) throw error
            duplicates++
          }
        }
      }))
      const stored = await things.findOne({ _id })
      expect(Object.keys(stored ?? {}).sort()).toEqual(['_id', ...Array.from({ length: RACERS }, (_, racer) => `field${String(racer)}`)].sort())
    }
    // On MongoDB the server retries such upserts itself, so only DocumentDB's losers show that the race happened.
    if (inject('databaseEmbedded')) expect(duplicates, `no upserts raced in ${String(rounds)} rounds`).toBeGreaterThan(0)
  })
})
