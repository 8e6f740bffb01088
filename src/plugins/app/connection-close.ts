import fp from 'fastify-plugin'

/**
 * Graceful shutdown with keep-alive clients: once closing starts, every
 * response says `Connection: close`, so each connection ends with the
 * request it carries instead of idling until the keep-alive timeout and
 * holding the process past its grace period.
 */
export default fp(async (fastify) => {
  let closing = false
  fastify.addHook('preClose', async () => { closing = true })
  fastify.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close')
  })
}, { name: 'connection-close' })
