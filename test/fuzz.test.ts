import { afterAll, describe, expect, it } from 'vitest'
import { runSchemathesis } from '../scripts/schemathesis.js'
import { buildTestApp, createTestWebsite } from './helper.js'

// The fuzzer sends thousands of calls and wrong credentials on purpose.
const app = await buildTestApp({ RATE_LIMIT_MAX: 1_000_000 })
afterAll(async () => { await app.close() })

describe('Schemathesis against the running service\'s /openapi.json', () => {
  it('finds no failure with every check, positive and negative data, and a fixed seed', async () => {
    const site = await createTestWebsite(app)
    const base = await app.listen({ host: '127.0.0.1', port: 0 })
    expect(await runSchemathesis(base, site.key, { maxExamples: 300, seed: 20261128 })).toBe(0)
  }, 600_000)
})
