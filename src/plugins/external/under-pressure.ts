import fp from 'fastify-plugin'
import underPressure from '@fastify/under-pressure'
import { unavailable } from '../../domain/errors.js'

/** The delay is averaged per sample; short samples keep one long stall from being averaged away. */
const SAMPLE_INTERVAL_MS = 250

/** Load shedding (docs/api.md#load-shedding), only from the first sample wholly after ready: start-up's samples are not load. */
export default fp(async (fastify) => {
  const maxEventLoopDelay = fastify.config.PRESSURE_MAX_EVENT_LOOP_DELAY_MS
  if (maxEventLoopDelay === 0) return
  let servingSince = Number.POSITIVE_INFINITY
  fastify.addHook('onReady', async () => { servingSince = Date.now() })
  await fastify.register(underPressure, {
    maxEventLoopDelay,
    sampleInterval: SAMPLE_INTERVAL_MS,
    // Called only under pressure; a rejection becomes the request's error, answered in the envelope.
    pressureHandler: async () => {
      if (Date.now() - servingSince >= 2 * SAMPLE_INTERVAL_MS) {
        throw unavailable('The service is overloaded; try again shortly')
      }
    }
  })
}, { name: 'under-pressure' })
