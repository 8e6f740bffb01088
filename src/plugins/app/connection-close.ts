import fp from 'fastify-plugin'

/**
 * Graceful shutdown with keep-alive clients. Fastify already answers
 * `Connection: close` to requests that arrive once closing has started; this
 * adds it to the responses of requests that were in flight at that moment,
 * so that their connections end with them instead of idling until the
 * keep-alive timeout and holding the process past its grace period.
 */
export default fp(async (fastify) => {
  let closing = false
  fastify.addHook('preClose', async () => { closing = true })
  fastify.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close')
  })
}, { name: 'connection-close' })
