import fp from 'fastify-plugin'

/** Connection: close on requests still in flight at shutdown. Why: docs/internals.md#shutdown-with-keep-alive-connections */
export default fp(async (fastify) => {
  let closing = false
  fastify.addHook('preClose', async () => { closing = true })
  fastify.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close')
  })
}, { name: 'connection-close' })
