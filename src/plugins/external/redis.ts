import fp from 'fastify-plugin'
import { SharedRedis } from '../../fleet/shared-redis.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Null without REDIS_URL: everything then counts in this process, as a single replica needs. */
    redis: SharedRedis | null
  }
}

/** The fleet's shared Redis when REDIS_URL names one, closed with the app. */
export default fp(async (fastify) => {
  const url = fastify.config.REDIS_URL
  if (url === '') {
    fastify.decorate('redis', null)
    return
  }
  const redis = new SharedRedis(url, fastify.log)
  fastify.decorate('redis', redis)
  fastify.addHook('onClose', async () => { await redis.close() })
  await redis.connect()
}, { name: 'redis' })
