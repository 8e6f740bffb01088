import fp from 'fastify-plugin'
import underPressure from '@fastify/under-pressure'
import { ApiError } from '../../errors.js'

const RETRY_AFTER_SECONDS = 5

class Overloaded extends ApiError {
  constructor () {
    super(503, 'The service is overloaded; try again shortly', { 'retry-after': String(RETRY_AFTER_SECONDS) })
  }
}

/** Load shedding: a saturated event loop answers 503 at once instead of letting every caller time out. */
export default fp(async (fastify) => {
  const maxEventLoopDelay = fastify.config.PRESSURE_MAX_EVENT_LOOP_DELAY_MS
  if (maxEventLoopDelay === 0) return
  await fastify.register(underPressure, {
    maxEventLoopDelay,
    // The delay is averaged per sample; short samples keep one long stall from being averaged away.
    sampleInterval: 250,
    retryAfter: RETRY_AFTER_SECONDS,
    customError: Overloaded
  })
}, { name: 'under-pressure' })
