import Fastify, { LogController, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { DestinationStream } from 'pino'
import type { Config } from './config.js'
import helmet from './plugins/external/helmet.js'
import metrics from './plugins/external/metrics.js'
import mongo from './plugins/external/mongo.js'
import rateLimit from './plugins/external/rate-limit.js'
import redis from './plugins/external/redis.js'
import swagger from './plugins/external/swagger.js'
import underPressure from './plugins/external/under-pressure.js'
import auth from './plugins/app/auth.js'
import callDeadline from './plugins/app/call-deadline.js'
import connectionClose from './plugins/app/connection-close.js'
import errors, { clientErrorHandler, frameworkErrors } from './plugins/app/errors.js'
import jsonBody from './plugins/app/json-body.js'
import repositories from './plugins/app/repositories.js'
import requestLog, { requestIdOf, traceIdsOf } from './plugins/app/request-log.js'
import adminRoutes from './routes/api/v1/admin/index.js'
import identifyBatchRoutes from './routes/api/v1/identify-batch.js'
import identifyRoutes from './routes/api/v1/identify.js'
import profileRoutes from './routes/api/v1/profiles.js'
import healthRoutes from './routes/health.js'
import { tracingStarted } from './tracing/start.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

export interface BuildAppOptions {
  /** Where JSON log lines go instead of stdout, e.g. a stream a test reads. */
  logStream?: DestinationStream
}

function loggerOptions (config: Config, stream: DestinationStream | undefined): FastifyServerOptions['logger'] {
  const base = {
    level: config.LOG_LEVEL,
    // Nothing logs headers today; this guards any future line that does.
    redact: { paths: ['req.headers.authorization', 'headers.authorization'], censor: '[redacted]' },
    // With tracing on, a request's lines carry its trace and span ids (request-log.ts).
    ...(tracingStarted() ? { mixin: traceIdsOf } : {})
  }
  if (stream !== undefined) return { ...base, stream }
  if (config.NODE_ENV === 'development') {
    return { ...base, transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } }
  }
  return base
}

/** Builds the whole service from its plugins, without listening: server.ts and the tests share it. */
export async function buildApp (config: Config, options: BuildAppOptions = {}) {
  const app = Fastify({
    logger: loggerOptions(config, options.logStream),
    bodyLimit: config.BODY_LIMIT_BYTES,
    // Slow clients (headers byte by byte) are cut off instead of holding a socket; Node checks every connectionsCheckingInterval.
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    http: { headersTimeout: config.HEADERS_TIMEOUT_MS, connectionsCheckingInterval: 1000 },
    clientErrorHandler,
    frameworkErrors,
    // Behind a proxy or load balancer, client addresses (for the failed-authentication limit) come from X-Forwarded-For.
    trustProxy: config.TRUST_PROXY,
    // Requests on open connections are still served while closing: docs/internals.md#shutdown-with-keep-alive-connections
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // request-log.ts writes the one line per request.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: requestIdOf,
    ajv: {
      // docs/api.md#identify-request: the API rejects numbers or booleans where strings belong instead of coercing them.
      customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false }
    }
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.decorate('config', config)
  await app.register(errors)
  await app.register(callDeadline)
  await app.register(helmet)
  await app.register(requestLog)
  await app.register(connectionClose)
  await app.register(jsonBody)
  await app.register(swagger)
  await app.register(mongo)
  await app.register(repositories)
  await app.register(redis)
  await app.register(auth)
  await app.register(rateLimit)
  await app.register(metrics)
  await app.register(healthRoutes)
  // Load shedding covers the API only: health, metrics and docs keep answering an overloaded process.
  await app.register(async (api) => {
    await api.register(underPressure)
    await api.register(identifyRoutes)
    await api.register(identifyBatchRoutes)
    await api.register(adminRoutes, { prefix: '/admin' })
    await api.register(profileRoutes)
  }, { prefix: '/api/v1' })
  return app
}

export type App = Awaited<ReturnType<typeof buildApp>>
