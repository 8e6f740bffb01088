import { expect, inject, it } from 'vitest'
import { runScript } from './run-script.js'

/**
 * The soak's short form (`npm run soak` runs 5 minutes, docs/development.md):
 * the built server under steady load through every write scenario in turn,
 * each slice answered 2xx, memory reported after each.
 */
it('keeps answering every call of every write scenario under steady load', async () => {
  // The run's database server; soak seeds a database of its own on it.
  const run = await runScript('scripts/bench/soak.ts', ['--minutes', '0.5', '--slice', '6', '--profiles', '1000', '--connections', '8'], { env: { ...process.env, MONGO_URL: inject('mongoUrl') }, timeoutMs: 240_000 })
  const report = `${run.stdout}\n${run.stderr.slice(-2000)}`
  expect(run.code, report).toBe(0)
  const slices = [...run.stdout.matchAll(/^\| (\d+) \| ([\w-]+) \| ([\d.]+) \| [\d.]+ \| (\d+) \| [\d.]+ \|$/gm)]
  expect(new Set(slices.map(([, , scenario]) => scenario)), report).toStrictEqual(new Set(['update', 'create', 'new-device', 'token']))
  expect(slices.map(([, , , , nonSuccess]) => Number(nonSuccess)), report).toStrictEqual(slices.map(() => 0))
  const [, calls, notOk] = /^(\d+) calls in [\d.]+ min, (\d+) not 2xx/m.exec(run.stdout) ?? []
  expect(Number(calls), report).toBeGreaterThan(100)
  expect(Number(notOk), report).toBe(0)
}, 300_000)
