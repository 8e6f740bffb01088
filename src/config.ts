import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { DEFAULT_USER_ID_DENYLIST, parseUserIdDenylist, type IdentifyRules } from './domain/identify.js'
import type { MetadataLimits } from './domain/metadata.js'

const Integer = (options: { default: number, minimum: number, maximum?: number, description: string }) =>
  Type.Integer(options)

/** The keys are the environment variables; README's table copies these descriptions by hand, so keep the two in step. */
export const ConfigSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('production'), Type.Literal('development'), Type.Literal('test')], {
    default: 'production',
    description: 'production logs JSON lines; development logs readable lines'
  }),
  HOST: Type.String({ default: '127.0.0.1', minLength: 1, description: 'address to listen on (0.0.0.0 in the container)' }),
  PORT: Integer({ default: 3000, minimum: 0, maximum: 65535, description: 'TCP port to listen on' }),
  MONGO_URL: Type.String({ default: '', description: 'MongoDB connection string; the database name comes from its path (default identify)' }),
  MONGO_TIMEOUT_MS: Integer({
    default: 3000,
    minimum: 100,
    maximum: 60000,
    description: 'how long a database call may wait for the server before the request gets a 503'
  }),
  CALL_DEADLINE_MS: Integer({
    default: 10000,
    minimum: 0,
    maximum: 600000,
    description: 'longest an identify call may take in all (its database commands each wait up to MONGO_TIMEOUT_MS); then it gets 503 with Retry-After (0 turns the deadline off)'
  }),
  BATCH_CALL_DEADLINE_MS: Integer({
    default: 60000,
    minimum: 0,
    maximum: 600000,
    description: 'longest a batch identify call may take in all; then it gets 503 with Retry-After, and sending the same batch again is safe (0 turns the deadline off)'
  }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)), {
    default: 'info',
    description: 'pino log level'
  }),
  BODY_LIMIT_BYTES: Integer({ default: 65536, minimum: 1024, description: 'largest request body; a larger one gets 413' }),
  BATCH_MAX_ITEMS: Integer({ default: 1000, minimum: 1, maximum: 100000, description: 'most items in one batch identify call; more get 400' }),
  BATCH_BODY_LIMIT_BYTES: Integer({ default: 5242880, minimum: 1024, description: 'largest batch identify body; a larger one gets 413' }),
  METADATA_MAX_FIELDS: Integer({ default: 100, minimum: 1, description: 'most metadata fields in one request' }),
  METADATA_MAX_BYTES: Integer({ default: 32768, minimum: 1, description: 'largest metadata of one request, as JSON' }),
  // At most 8: the body schema spells out every level, so it doubles with each one.
  METADATA_MAX_DEPTH: Integer({ default: 5, minimum: 1, maximum: 8, description: 'deepest nesting of objects and arrays inside one metadata field\'s value' }),
  PROFILE_MAX_FIELDS: Integer({ default: 500, minimum: 1, description: 'most metadata fields one profile holds after merging' }),
  PROFILE_MAX_BYTES: Integer({
    default: 1048576,
    minimum: 1024,
    maximum: 15 * 1024 * 1024,
    description: 'largest metadata of one profile after merging, as stored (BSON); MongoDB refuses documents over 16 MiB'
  }),
  USER_ID_DENYLIST: Type.String({
    default: DEFAULT_USER_ID_DENYLIST.join(','),
    description: 'comma-separated user_id values refused as placeholders of broken clients, compared trimmed and in any case; replaces the default list, and an empty value turns the check off'
  }),
  HEADERS_TIMEOUT_MS: Integer({
    default: 10000,
    minimum: 1000,
    description: 'how long a client may take to send the request headers; a slower one is answered 408 and disconnected'
  }),
  REQUEST_TIMEOUT_MS: Integer({
    default: 30000,
    minimum: 1000,
    description: 'how long a client may take to send the whole request (at least HEADERS_TIMEOUT_MS)'
  }),
  SHUTDOWN_GRACE_MS: Integer({
    default: 10000,
    minimum: 0,
    description: 'on SIGTERM or SIGINT, how long requests in flight may take before the process exits anyway'
  }),
  RATE_LIMIT_MAX: Integer({ default: 6000, minimum: 1, description: 'identify calls one key or token may make per RATE_LIMIT_WINDOW_MS; more get 429' }),
  RATE_LIMIT_WINDOW_MS: Integer({ default: 60000, minimum: 1000, description: 'the window of RATE_LIMIT_MAX' }),
  AUTH_FAILURE_MAX: Integer({
    default: 30,
    minimum: 1,
    description: 'failed authentications one client address may make per AUTH_FAILURE_WINDOW_MS; then every call from it gets 429 until the window ends'
  }),
  AUTH_FAILURE_WINDOW_MS: Integer({ default: 60000, minimum: 1000, description: 'the window of AUTH_FAILURE_MAX' }),
  PRESSURE_MAX_EVENT_LOOP_DELAY_MS: Integer({
    default: 1000,
    minimum: 0,
    description: 'event loop delay above which calls get 503 with Retry-After instead of queueing (0 turns load shedding off)'
  }),
  TRUST_PROXY: Type.Boolean({
    default: false,
    description: 'take the client address from X-Forwarded-For (behind a proxy or load balancer); it keys the failed-authentication limit'
  }),
  REDIS_URL: Type.String({
    default: '',
    description: 'Redis connection string (redis://host:6379) shared by the replicas of a fleet: rate limits, the failed-authentication lockout and revocations; empty keeps them in this process'
  }),
  METRICS_ENABLED: Type.Boolean({ default: true, description: 'serve Prometheus metrics at GET /metrics' }),
  AUTH_CACHE_TTL_MS: Integer({
    default: 30000,
    minimum: 0,
    maximum: 60000,
    description: 'how long a resolved key, token or website is reused; a revoked key or a suspended website stops working within it (0 turns the cache off)'
  }),
  MAX_TOKENS_PER_ACCOUNT: Integer({
    default: 20,
    minimum: 1,
    maximum: 10000,
    description: 'most active (neither revoked nor expired) account tokens one account may hold; creating one more gets 409, from the Account API and the command line'
  })
})

export type Config = Static<typeof ConfigSchema>

export class ConfigError extends Error {
  override name = 'ConfigError'
}

type Env = Record<string, string | undefined>

/** Settings where an empty value means an empty list rather than the default. */
const emptyIsAValue = new Set(['USER_ID_DENYLIST'])

const booleans: Record<string, boolean> = { true: true, false: false, 1: true, 0: false, yes: true, no: false }

/** Reads and validates the settings; a bad value throws a ConfigError naming the variable. */
export function loadConfig (env: Env = process.env, overrides: Partial<Config> = {}): Config {
  const raw: Record<string, unknown> = {}
  for (const [name, schema] of Object.entries(ConfigSchema.properties)) {
    const text = env[name]
    if (text !== undefined && (text !== '' || emptyIsAValue.has(name))) raw[name] = convert(name, text, schema)
  }
  const config = Value.Default(ConfigSchema, { ...raw, ...overrides })
  const [error] = Value.Errors(ConfigSchema, config)
  if (error !== undefined) {
    const name = error.path.replace(/^\//, '')
    throw new ConfigError(`${name}=${JSON.stringify(env[name] ?? (config as Record<string, unknown>)[name])} is invalid: ${describe(name)}`)
  }
  const valid = config as Config
  if (valid.REQUEST_TIMEOUT_MS < valid.HEADERS_TIMEOUT_MS) {
    throw new ConfigError(`REQUEST_TIMEOUT_MS=${String(valid.REQUEST_TIMEOUT_MS)} is invalid: it must be at least HEADERS_TIMEOUT_MS (${String(valid.HEADERS_TIMEOUT_MS)})`)
  }
  return valid
}

function convert (name: string, text: string, schema: TSchema): unknown {
  if (schema.type === 'boolean') {
    const flag = booleans[text.trim().toLowerCase()]
    if (flag === undefined) throw new ConfigError(`${name}=${JSON.stringify(text)} is invalid: expected true or false`)
    return flag
  }
  if (schema.type !== 'integer') return text
  if (!/^-?\d+$/.test(text.trim())) {
    throw new ConfigError(`${name}=${JSON.stringify(text)} is invalid: ${describe(name)}`)
  }
  return Number(text)
}

function describe (name: string): string {
  const schema = (ConfigSchema.properties as Record<string, TSchema>)[name]
  if (schema === undefined) return 'unknown setting'
  if (schema.type === 'integer') {
    const max = schema.maximum === undefined ? '' : ` and at most ${String(schema.maximum)}`
    return `expected a whole number of at least ${String(schema.minimum)}${max} (${String(schema.description)})`
  }
  if (Array.isArray(schema.anyOf)) {
    return `expected one of ${schema.anyOf.map((option: TSchema) => String(option.const)).join(', ')}`
  }
  return String(schema.description)
}

/** The metadata and profile limits of a configuration, as the domain rules and the body schema take them. */
export function metadataLimits (config: Config): MetadataLimits {
  return {
    maxFields: config.METADATA_MAX_FIELDS,
    maxBytes: config.METADATA_MAX_BYTES,
    maxDepth: config.METADATA_MAX_DEPTH,
    profileMaxFields: config.PROFILE_MAX_FIELDS,
    profileMaxBytes: config.PROFILE_MAX_BYTES
  }
}

/** Everything an identify body is checked against, from a configuration. */
export function identifyRules (config: Config): IdentifyRules {
  return { limits: metadataLimits(config), userIdDenylist: parseUserIdDenylist(config.USER_ID_DENYLIST) }
}
