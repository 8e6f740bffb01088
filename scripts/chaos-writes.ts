import { randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'
import { ObjectId } from 'mongodb'
import { connectDatabase } from '../src/storage/database.js'
import { startDatabase, withDatabaseName } from '../tools/local-database.js'

/**
 * The database alone under SIGKILLs (5 s up, 3 s down), of PostgreSQL under
 * a live gateway and of the gateway in turn, with the commands upsertProfile
 * (src/storage/repositories/profile-upsert.ts) sent when this was written and nothing
 * else, from concurrent loops on the driver's pool. A new user: findOne of
 * the profile (none), insertOne of it, findOneAndUpdate with upsert of its
 * visitor link (returnDocument before), findOne of its incarnation in
 * erasedIncarnations. An existing user, in turn: findOne of the profile and
 * of the link, then a new field by updateOne (metadata only), or a new field
 * and a new visitor by findOneAndUpdate (returnDocument after). Every write
 * acknowledged must be found afterwards. Separates the engine's losses from
 * the service's (docs/reliability.md).
 */
const { values } = parseArgs({ options: { kills: { type: 'string', default: '10' }, workers: { type: 'string', default: '8' } } })
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

interface Profile { _id: ObjectId, incarnation: ObjectId, metadata: Record<string, number>, visitorIds: string[] }
interface Link { _id: string, profileId: ObjectId, profileIncarnation: ObjectId }
interface Created { profileId: ObjectId, linkId: string }

const database = await startDatabase({ embedded: true })
const { client, db } = await connectDatabase(withDatabaseName(database.url, 'writes'), 2000)
const profiles = db.collection<Profile>('profiles')
const links = db.collection<Link>('visitorLinks')
const erased = db.collection<{ _id: ObjectId }>('erasedIncarnations')

const created: Created[] = []
const updated = { updateOne: [] as Array<{ profileId: ObjectId, field: string }>, findOneAndUpdate: [] as Array<{ profileId: ObjectId, field: string, visitorId: string }> }
let running = true
let errors = 0
let step = 0

async function createUser (): Promise<Created> {
  const profile: Profile = { _id: new ObjectId(), incarnation: new ObjectId(), metadata: { n: 0 }, visitorIds: [randomUUID()] }
  const linkId = randomUUID()
  if (await profiles.findOne({ _id: profile._id }) !== null) throw new Error('a new profile exists already')
  await profiles.insertOne(profile)
  await links.findOneAndUpdate({ _id: linkId }, { $set: { profileId: profile._id, profileIncarnation: profile.incarnation } }, { upsert: true, returnDocument: 'before' })
  await erased.findOne({ _id: profile.incarnation })
  const user = { profileId: profile._id, linkId }
  created.push(user)
  return user
}

async function updateUser (mine: Created[], byFindOneAndUpdate: boolean): Promise<void> {
  const target = mine[Math.floor(Math.random() * mine.length)] as Created
  const field = `metadata.step_${String(step++)}`
  await profiles.findOne({ _id: target.profileId })
  await links.findOne({ _id: target.linkId })
  if (byFindOneAndUpdate) {
    const visitorId = randomUUID()
    const after = await profiles.findOneAndUpdate({ _id: target.profileId }, { $set: { [field]: 1 }, $addToSet: { visitorIds: visitorId } }, { returnDocument: 'after' })
    if (after === null) throw new Error('an acknowledged profile is gone')
    updated.findOneAndUpdate.push({ profileId: target.profileId, field, visitorId })
  } else {
    await profiles.updateOne({ _id: target.profileId }, { $set: { [field]: 1 } })
    updated.updateOne.push({ profileId: target.profileId, field })
  }
}

const worker = async (): Promise<void> => {
  const mine: Created[] = []
  for (let turn = 0; running; turn++) {
    try {
      if (turn % 2 === 0 || mine.length === 0) {
        mine.push(await createUser())
      } else {
        await updateUser(mine, turn % 4 === 1)
      }
    } catch {
      errors++
      await sleep(50)
    }
  }
}
const load = Array.from({ length: Number(values.workers) }, worker)
for (let kill = 1; kill <= Number(values.kills); kill++) {
  await sleep(5000)
  const part = kill % 2 === 1 ? 'postgres' : 'gateway'
  await database.stop('SIGKILL', part)
  await sleep(3000)
  await database.start()
  process.stderr.write(`kill ${String(kill)} (${part}): ${String(created.length)} users created, ${String(updated.updateOne.length + updated.findOneAndUpdate.length)} updated, ${String(errors)} errors\n`)
}
running = false
await Promise.all(load)

const lost = { profiles: 0, links: 0, updateOne: 0, findOneAndUpdateFields: 0, findOneAndUpdateVisitors: 0 }
for (const { profileId, linkId } of created) {
  if (await profiles.findOne({ _id: profileId }) === null) lost.profiles++
  if (await links.findOne({ _id: linkId }) === null) lost.links++
}
const metadataHas = async (profileId: ObjectId, field: string): Promise<boolean> => await profiles.findOne({ _id: profileId, [field]: 1 }) !== null
for (const { profileId, field } of updated.updateOne) if (!await metadataHas(profileId, field)) lost.updateOne++
for (const { profileId, field, visitorId } of updated.findOneAndUpdate) {
  if (!await metadataHas(profileId, field)) lost.findOneAndUpdateFields++
  if (await profiles.findOne({ _id: profileId, visitorIds: visitorId }) === null) lost.findOneAndUpdateVisitors++
}
process.stdout.write([
  `new users acknowledged (findOne, insertOne, findOneAndUpdate upsert, findOne): ${String(created.length)}; lost profiles: ${String(lost.profiles)}; lost links: ${String(lost.links)}`,
  `updates by updateOne acknowledged: ${String(updated.updateOne.length)}; lost: ${String(lost.updateOne)}`,
  `updates by findOneAndUpdate ($set and $addToSet) acknowledged: ${String(updated.findOneAndUpdate.length)}; lost fields: ${String(lost.findOneAndUpdateFields)}; lost visitors: ${String(lost.findOneAndUpdateVisitors)}`,
  `failed calls (not acknowledged): ${String(errors)}`
].join('\n') + '\n')
await client.close()
await database.close()
