import fp from 'fastify-plugin'

/** Connection: close on requests still in flight at shutdown. Why: docs/internals.md#shutdown-with-keep-alive-connections */
export default fp(async (fastify) => {
  let closing = false
  fastify.addHook('preClose', async () => { closing = true })
  // A callback hook: an async one costs a promise on every answer.
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close')
    done(null, payload)
  })
}, { name: 'connection-close' })
