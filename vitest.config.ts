import { defineConfig } from 'vitest/config'

/** The system tier: Schemathesis, chaos, outages, the Chromium pages and the soak's short form; minutes each, run by npm run test:system. */
const SYSTEM_TESTS = ['test/fuzz.test.ts', 'test/chaos.test.ts', 'test/outage.test.ts', 'test/docs-page.test.ts', 'test/hardening.test.ts', 'test/soak.test.ts']

export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    // Each file builds its app on a database of its own, so files run in parallel; most wait on I/O, so more workers than the 2 cores.
    fileParallelism: true,
    maxWorkers: 3,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'fast', include: ['test/**/*.test.ts', 'clients/node/test/**/*.test.ts'], exclude: SYSTEM_TESTS } },
      { extends: true, test: { name: 'system', include: SYSTEM_TESTS } }
    ],
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      reporter: ['text-summary', 'text', 'html'],
      reportsDirectory: 'coverage'
    }
  }
})
