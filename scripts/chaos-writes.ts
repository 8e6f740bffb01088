import { randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'
import { ObjectId } from 'mongodb'
import { connectDatabase } from '../src/database.js'
import { startDatabase, withDatabaseName } from './local-database.js'

/**
 * The stand-in alone under SIGKILLs, with the service's writes and nothing
 * else: per call an insertOne (a new profile), then an updateOne with
 * upsert (its visitor link), as upsertProfile does for a new user. Every
 * pair acknowledged must be found afterwards. Separates the stand-in's
 * losses from the service's (docs/reliability.md).
 */
const { values } = parseArgs({ options: { kills: { type: 'string', default: '10' }, workers: { type: 'string', default: '8' } } })
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

const database = await startDatabase({ embedded: true })
const { client, db } = await connectDatabase(withDatabaseName(database.url, 'writes'), 2000)
const profiles = db.collection<{ _id: ObjectId, n: number }>('profiles')
const links = db.collection<{ _id: string, profileId: ObjectId }>('links')
const acknowledged: Array<{ profileId: ObjectId, linkId: string }> = []
let running = true
let errors = 0
const worker = async (): Promise<void> => {
  while (running) {
    const profileId = new ObjectId()
    const linkId = randomUUID()
    try {
      await profiles.insertOne({ _id: profileId, n: acknowledged.length })
      await links.updateOne({ _id: linkId }, { $set: { profileId } }, { upsert: true })
      acknowledged.push({ profileId, linkId })
    } catch {
      errors++
      await sleep(50)
    }
  }
}
const load = Array.from({ length: Number(values.workers) }, worker)
for (let kill = 1; kill <= Number(values.kills); kill++) {
  await sleep(5000)
  await database.stop('SIGKILL')
  await sleep(3000)
  await database.start()
  process.stderr.write(`kill ${String(kill)}: ${String(acknowledged.length)} acknowledged, ${String(errors)} errors\n`)
}
running = false
await Promise.all(load)
let lostProfiles = 0
let lostLinks = 0
for (const { profileId, linkId } of acknowledged) {
  if (await profiles.findOne({ _id: profileId }) === null) lostProfiles++
  if (await links.findOne({ _id: linkId }) === null) lostLinks++
}
process.stdout.write(`${String(acknowledged.length)} acknowledged pairs; lost profiles (insertOne): ${String(lostProfiles)}; lost links (upsert): ${String(lostLinks)}\n`)
await client.close()
await database.close()
