import { afterAll, describe, expect, it } from 'vitest'
import { fuzzAccountApi, fuzzIdentify, shortfalls } from '../tools/schemathesis.js'
import { buildTestApp } from './helper.js'

// The fuzzer sends thousands of calls and wrong credentials on purpose.
const app = await buildTestApp({ RATE_LIMIT_MAX: 1_000_000, MAX_TOKENS_PER_ACCOUNT: 10_000 })
afterAll(async () => { await app.close() })

const options = { maxExamples: 300, seed: 20261128 }

describe('Schemathesis against the running service\'s /openapi.json', () => {
  it('finds no failure with a df_ key nor with a dft_ token, and its identify calls reach the body over many profiles', async () => {
    const passes = await fuzzIdentify(app, options)
    expect(passes.map((pass) => ({ credential: pass.credential, exitCode: pass.exitCode, shortfalls: shortfalls(pass, options) }))).toEqual([
      { credential: 'df_ website key', exitCode: 0, shortfalls: [] },
      { credential: 'dft_ account token', exitCode: 0, shortfalls: [] }
    ])
  }, 900_000)

  it('finds no failure in the Account API with an owner token', async () => {
    expect(await fuzzAccountApi(app, options)).toBe(0)
  }, 900_000)
})
