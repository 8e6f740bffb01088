import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../src/config.js'

describe('loadConfig', () => {
  it('gives every setting its documented default', () => {
    const config = loadConfig({})
    expect(config).toMatchObject({
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: 3000,
      MONGO_URL: '',
      BODY_LIMIT_BYTES: 65536,
      METADATA_MAX_FIELDS: 100,
      METADATA_MAX_BYTES: 32768,
      METADATA_MAX_DEPTH: 5,
      PROFILE_MAX_FIELDS: 500
    })
    expect(config.AUTH_CACHE_TTL_MS).toBeLessThanOrEqual(60000)
  })

  it('reads numbers and names from the environment', () => {
    const config = loadConfig({ PORT: '8080', LOG_LEVEL: 'debug', MONGO_URL: 'mongodb://db/identify' })
    expect(config.PORT).toBe(8080)
    expect(config.LOG_LEVEL).toBe('debug')
    expect(config.MONGO_URL).toBe('mongodb://db/identify')
  })

  it.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['PORT', '3.5'],
    ['BODY_LIMIT_BYTES', '10'],
    ['LOG_LEVEL', 'loud'],
    ['NODE_ENV', 'staging'],
    ['AUTH_CACHE_TTL_MS', '120000']
  ])('stops on %s=%s with a message naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError)
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^${name}=`))
  })
})
