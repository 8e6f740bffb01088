import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { checkDatabase } from '../storage/database.js'
import { unavailable } from '../domain/errors.js'
import { ErrorEnvelope } from '../schemas/errors.js'

const Healthy = Type.Object({ status: Type.Literal('ok') })

const healthRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/healthz', {
    schema: { summary: 'The process is alive', tags: ['health'], response: { 200: Healthy } }
  }, async () => ({ status: 'ok' as const }))

  fastify.get('/readyz', {
    schema: { summary: 'The database answers a read', tags: ['health'], response: { 200: Healthy, 503: ErrorEnvelope } }
  }, async (request) => {
    try {
      await checkDatabase(fastify.mongo.db)
    } catch (error) {
      // Whatever the reason (unreachable, unauthorized, shutting down), this process cannot serve.
      request.log.warn({ err: { type: (error as Error).name } }, 'database check failed')
      throw unavailable('The database does not answer')
    }
    return { status: 'ok' as const }
  })
}

export default healthRoutes
