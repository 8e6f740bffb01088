import fp from 'fastify-plugin'
import { createRepositories, ensureIndexes, type Repositories } from '../../storage/repositories/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    repositories: Repositories
  }
}

/** The repositories on the app's database, with their indexes in place before the first request. */
export default fp(async (fastify) => {
  const repositories = createRepositories(fastify.mongo.db)
  await ensureIndexes(repositories)
  fastify.decorate('repositories', repositories)
}, { name: 'repositories', dependencies: ['mongo'] })
