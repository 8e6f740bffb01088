import { ObjectId } from 'mongodb'
import { connectDatabase } from '../../src/storage/database.js'
import { identifyRules, loadConfig } from '../../src/config.js'
import type { Metadata } from '../../src/domain/metadata.js'
import { visitorLinkIdFor } from '../../src/storage/repositories/profile-documents.js'
import { listedMergePipeline } from '../../src/storage/repositories/profile-merge.js'
import { profileIdFor } from '../../src/storage/repositories/profiles.js'
import { LatencyRecorder, noteFailure, receiveInput, replyToParent, type Measurement } from './measure.js'
import { BATCH_SIZE, batchItems, readUser, splitBody, updateBody, type FloorKind, type Layout } from './scenarios.js'

/**
 * The db-floor, merge-floor, read-floor and bulk-floor references: what the database
 * alone sustains, with no HTTP, through connectDatabase with the server's URL
 * (so the server's pool), from `connections` concurrent loops. Runs in a
 * process of its own, forked by run.ts. What each floor sends:
 * docs/benchmarks.md#what-each-row-measures.
 */
export interface DbFloorInput {
  kind: FloorKind
  mongoUrl: string
  layout: Layout
  connections: number
  durationSeconds: number
}

/** Only the fields these commands touch: the rest of a stored document is left as it is. */
interface StoredFields {
  _id: ObjectId | string
  incarnation?: ObjectId
  [field: string]: unknown
}

/** The `$set` of a metadata merge, as the service writes it: each field by its path, and updatedAt. */
function setOf (metadata: Metadata): Record<string, unknown> {
  const set: Record<string, unknown> = { updatedAt: new Date() }
  for (const [name, value] of Object.entries(metadata)) set[`metadata.${name}`] = value
  return set
}

async function main (): Promise<void> {
  const input = await receiveInput<DbFloorInput>()
  const { websiteId } = input.layout
  const config = loadConfig({})
  const { limits } = identifyRules(config)
  const { client, db } = await connectDatabase(input.mongoUrl, config.MONGO_TIMEOUT_MS)
  const profiles = db.collection<StoredFields>('profiles')
  const visitorLinks = db.collection<StoredFields>('visitorLinks')
  const latencies = new LatencyRecorder()
  let next = 0
  let calls = 0
  let successes = 0
  let errors = 0
  const failures: Record<string, string> = {}

  const readCall = (i: number) => async () => await profiles.findOne({ _id: profileIdFor(websiteId, readUser(input.layout, i)) })
  const writeCall = (i: number) => {
    const { userId, metadata } = splitBody(updateBody(input.layout, i, 'db-floor'))
    return async () => await profiles.updateOne({ _id: profileIdFor(websiteId, userId) }, { $set: setOf(metadata) }, { upsert: true })
  }
  // The one command of an update of a listed visitor, as the service sends it.
  const mergeCall = (i: number) => {
    const { userId, visitorId, metadata } = splitBody(updateBody(input.layout, i, 'merge-floor'))
    const change = { set: metadata, setOnce: {}, unset: [] }
    return async () => await profiles.findOneAndUpdate({ _id: profileIdFor(websiteId, userId) },
      listedMergePipeline({ userId, visitorId, change, limits, changeId: new ObjectId(), now: new Date() }), { returnDocument: 'after' })
  }
  const bulkCall = (i: number) => {
    const items = batchItems('bulk-floor', input.layout, i).map(splitBody).map(({ userId, visitorId, metadata }) =>
      ({ _id: profileIdFor(websiteId, userId), linkId: visitorLinkIdFor(websiteId, visitorId), metadata }))
    return async () => {
      const [read] = await Promise.all([
        profiles.find({ _id: { $in: items.map(({ _id }) => _id) } }, { batchSize: items.length }).toArray(),
        visitorLinks.find({ _id: { $in: items.map(({ linkId }) => linkId) } }, { batchSize: items.length }).toArray()
      ])
      const incarnations = new Map(read.map((profile) => [String(profile._id), profile.incarnation]))
      // The batch writes each profile only as it read it.
      await profiles.bulkWrite(items.map(({ _id, metadata }) =>
        ({ updateOne: { filter: { _id, incarnation: incarnations.get(String(_id)) }, update: { $set: setOf(metadata) } } })), { ordered: false })
    }
  }
  const call = { read: readCall, write: writeCall, merge: mergeCall, bulk: bulkCall }[input.kind]
  const perCall = input.kind === 'bulk' ? BATCH_SIZE['bulk-floor'] : 1

  const started = performance.now()
  const deadline = started + input.durationSeconds * 1000
  const loop = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const send = call(next++)
      const begin = performance.now()
      try {
        await send()
        successes += perCall
      } catch (error) {
        errors++
        noteFailure(failures, 'error', error instanceof Error ? error.message : String(error))
      }
      calls++
      latencies.record(performance.now() - begin)
    }
  }
  await Promise.all(Array.from({ length: input.connections }, loop))
  const durationSeconds = (performance.now() - started) / 1000
  await client.close()

  const measurement: Measurement = {
    calls,
    durationSeconds,
    rps: successes / durationSeconds,
    ...latencies.percentiles(),
    non2xx: 0,
    errors,
    statusCodes: {},
    failures,
    actions: {}
  }
  await replyToParent(measurement)
}

main().catch((error: unknown) => {
  console.error('bench floor process failed:', error)
  process.exit(1)
})
