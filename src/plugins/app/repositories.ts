import fp from 'fastify-plugin'
import { migrate } from '../../storage/migrations/index.js'
import { createRepositories, ensureIndexes, type Repositories } from '../../storage/repositories/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    repositories: Repositories
  }
}

/** The repositories on the app's database: indexes, then migrations of stored documents, before the first request. */
export default fp(async (fastify) => {
  const repositories = createRepositories(fastify.mongo.db)
  await ensureIndexes(repositories)
  await migrate(fastify.mongo.db, fastify.log)
  fastify.decorate('repositories', repositories)
}, { name: 'repositories', dependencies: ['mongo'] })
