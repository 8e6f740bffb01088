import type { ObjectId } from 'mongodb'
import { connectDatabase } from '../../src/database.js'
import { loadConfig } from '../../src/config.js'
import { profileIdFor, UPDATES_PER_COMMAND } from '../../src/repositories/profiles.js'
import { LatencyRecorder, receiveInput, replyToParent, type Measurement } from './measure.js'
import { BATCH_SIZE, batchItems, readUser, splitBody, updateBody, type Layout } from './scenarios.js'

/**
 * The db-floor and read-floor references: what the database alone sustains,
 * with no HTTP, through the same connection settings and URL as the server
 * (so one connection on the stand-in), from `connections` concurrent loops.
 * Runs in a process of its own, forked by run.ts.
 *
 * - write (db-floor): the one write an update needs, the
 *   `updateOne({ _id }, { $set })` of a merge, made an upsert as the issue
 *   defines the floor (every user is seeded, so it always updates), with the
 *   same body as an `update` call; no reads.
 * - read (read-floor): `findOne({ _id })` of the profiles the `read`
 *   scenario reads, in the same order.
 * - bulk (bulk-floor): the least an update of BATCH_SIZE known profiles needs,
 *   as batch-1000 sends them: their reads by `_id` (one findOne each, sent
 *   together: on the stand-in one `$in` scans the collection) and unordered
 *   bulkWrites of their `$set`s, UPDATES_PER_COMMAND to a command as the
 *   stand-in needs (the batch route sends them the same way). Its calls count
 *   profiles, not rounds.
 */
export interface DbFloorInput {
  kind: 'write' | 'read' | 'bulk'
  mongoUrl: string
  layout: Layout
  connections: number
  durationSeconds: number
}

/** Only the fields this write touches: the rest of the profile document is left as it is. */
interface ProfileFields {
  _id: ObjectId
  [field: string]: unknown
}

async function main (): Promise<void> {
  const input = await receiveInput<DbFloorInput>()
  const { client, db } = await connectDatabase(input.mongoUrl, loadConfig({}).MONGO_TIMEOUT_MS)
  const profiles = db.collection<ProfileFields>('profiles')
  const latencies = new LatencyRecorder()
  let next = 0
  let successes = 0
  let errors = 0
  const readCall = (i: number) => async () => await profiles.findOne({ _id: profileIdFor(input.layout.websiteId, readUser(input.layout, i)) })
  const writeCall = (i: number) => {
    const { userId, metadata } = splitBody(updateBody(input.layout, i, 'db-floor'))
    const set: Record<string, unknown> = { updatedAt: new Date() }
    for (const [name, value] of Object.entries(metadata)) set[`metadata.${name}`] = value
    return async () => await profiles.updateOne({ _id: profileIdFor(input.layout.websiteId, userId) }, { $set: set }, { upsert: true })
  }

  const bulkCall = (i: number) => {
    const writes = batchItems('bulk-floor', input.layout, i).map((body) => {
      const { userId, metadata } = splitBody(body)
      const set: Record<string, unknown> = { updatedAt: new Date() }
      for (const [name, value] of Object.entries(metadata)) set[`metadata.${name}`] = value
      return { _id: profileIdFor(input.layout.websiteId, userId), set }
    })
    return async () => {
      await Promise.all(writes.map(async ({ _id }) => await profiles.findOne({ _id })))
      for (let start = 0; start < writes.length; start += UPDATES_PER_COMMAND) {
        await profiles.bulkWrite(writes.slice(start, start + UPDATES_PER_COMMAND).map(({ _id, set }) => ({ updateOne: { filter: { _id }, update: { $set: set } } })), { ordered: false })
      }
    }
  }
  const perCall = input.kind === 'bulk' ? BATCH_SIZE['bulk-floor'] : 1

  const started = performance.now()
  const deadline = started + input.durationSeconds * 1000
  const loop = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const call = input.kind === 'read' ? readCall(next++) : input.kind === 'bulk' ? bulkCall(next++) : writeCall(next++)
      const begin = performance.now()
      try {
        await call()
        successes += perCall
      } catch {
        errors++
      }
      latencies.record(performance.now() - begin)
    }
  }
  await Promise.all(Array.from({ length: input.connections }, loop))
  const durationSeconds = (performance.now() - started) / 1000
  await client.close()

  const measurement: Measurement = {
    calls: successes + errors,
    durationSeconds,
    rps: successes / durationSeconds,
    ...latencies.percentiles(),
    non2xx: 0,
    errors,
    statusCodes: {},
    actions: {}
  }
  await replyToParent(measurement)
}

main().catch((error: unknown) => {
  console.error('bench db-floor/read-floor process failed:', error)
  process.exit(1)
})
