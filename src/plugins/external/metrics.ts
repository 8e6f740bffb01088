import fp from 'fastify-plugin'
import { MongoError } from 'mongodb'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { routeLabel } from '../../routes/route-label.js'
import { IdentifyAction } from '../../schemas/identify.js'

/** docs/api.md#metrics, and the redis_* of docs/scaling.md#what-each-replica-keeps-and-what-the-fleet-shares. */
export default fp(async (fastify) => {
  if (!fastify.config.METRICS_ENABLED) return
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })

  const labelNames = ['method', 'route', 'status_code'] as const
  const requests = new Counter({ name: 'http_requests_total', help: 'HTTP requests by route and status', labelNames, registers: [registry] })
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency by route and status',
    labelNames,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry]
  })
  const identifyActions = new Counter({
    name: 'identify_actions_total',
    help: 'Successful identify calls by action',
    labelNames: ['action'],
    registers: [registry]
  })
  // Every action from zero, so that a rate over a new action needs no special case.
  for (const { const: action } of IdentifyAction.anyOf) identifyActions.inc({ action }, 0)
  const adminCalls = new Counter({
    name: 'admin_calls_total',
    help: 'Account API calls by action and status',
    labelNames: ['action', 'status_code'],
    registers: [registry]
  })
  const erasures = new Counter({ name: 'profile_erasures_total', help: 'Profiles erased through the API', registers: [registry] })
  erasures.inc(0)
  const databaseErrors = new Counter({ name: 'database_errors_total', help: 'Errors raised by the database driver', registers: [registry] })
  databaseErrors.inc(0)

  const redis = fastify.redis
  if (redis !== null) {
    // Read from the redis plugin at each scrape rather than counted twice.
    new Gauge({ name: 'redis_up', help: '1 while Redis answers; 0 while limits count per replica (disconnected, or the breaker open after a failed command)', registers: [registry], collect () { this.set(redis.isUp() ? 1 : 0) } })
    new Counter({
      name: 'redis_fallbacks_total',
      help: 'Calls served from this replica\'s memory because Redis failed, by use',
      labelNames: ['use'],
      registers: [registry],
      collect () {
        this.reset()
        for (const [use, count] of Object.entries(redis.fallbacks)) this.inc({ use }, count)
      }
    })
    new Counter({
      name: 'redis_command_failures_total',
      help: 'Redis commands that failed or timed out on a call\'s path; each opens the breaker, so a hung Redis costs one timeout per outage',
      registers: [registry],
      collect () {
        this.reset()
        this.inc(redis.failures())
      }
    })
  }

  // Callback hooks: an async one costs a promise on every call.
  fastify.addHook('onError', (_request, _reply, error, done) => {
    if (error instanceof MongoError) databaseErrors.inc()
    done()
  })
  fastify.addHook('onResponse', (request, reply, done) => {
    // Unmatched URLs share one label, so that scanning for paths cannot grow the series without bound.
    const labels = { method: request.method, route: routeLabel(request), status_code: reply.statusCode }
    requests.inc(labels)
    duration.observe(labels, reply.elapsedTime / 1000)
    const action = request.identifyAction
    if (action !== null && action !== undefined) identifyActions.inc({ action })
    const { adminAction } = request.routeOptions.config
    if (adminAction !== undefined) adminCalls.inc({ action: adminAction, status_code: reply.statusCode })
    if (request.profileErased === true) erasures.inc()
    done()
  })

  fastify.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    reply.type(registry.contentType)
    return await registry.metrics()
  })
}, { name: 'metrics', dependencies: ['request-log', 'redis'] })
