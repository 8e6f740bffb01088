import fp from 'fastify-plugin'
import { connectDatabase, type Database } from '../../storage/database.js'

declare module 'fastify' {
  interface FastifyInstance {
    mongo: Database
  }
}

/** The MongoClient's life: connected before the app is ready, closed with it. */
export default fp(async (fastify) => {
  const { MONGO_URL, MONGO_TIMEOUT_MS } = fastify.config
  const database = await connectDatabase(MONGO_URL, MONGO_TIMEOUT_MS)
  fastify.decorate('mongo', database)
  fastify.addHook('onClose', async () => { await database.client.close() })
}, { name: 'mongo' })
