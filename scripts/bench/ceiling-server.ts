import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { limitHeapGrowth } from '../../src/runtime/heap.js'
import { profileIdFor } from '../../src/storage/repositories/profiles.js'

/**
 * The http-ceiling reference: the real app, configured from the environment
 * like dist/server.js, whose identify route runs unchanged (authentication,
 * rate-limit budget, body schema, metadata checks, response serialization)
 * while the one database call it makes per request, upsertProfile, answers
 * "updated" at once. The auth cache answers every call after the first, so
 * no request reaches the database.
 *
 * Stubbing the repository instead of adding a look-alike route keeps the
 * ceiling in step with the real route as src/ changes, and leaves src/ alone.
 * run.ts starts this with `node --import tsx` on a port of its own.
 */
async function main (): Promise<void> {
  const config = loadConfig()
  limitHeapGrowth()
  const app = await buildApp(config)
  // The route reads `profiles` from the same repositories object, so replacing the method on it is enough.
  app.repositories.profiles.upsertProfile = async (input) => ({
    profileId: profileIdFor(input.websiteId, input.userId).toHexString(),
    created: false,
    changed: true
  })

  // SIGTERM from run.ts: close like the server does, so the database connection ends cleanly.
  process.once('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
  await app.listen({ host: config.HOST, port: config.PORT })
}

main().catch((error: unknown) => {
  console.error('bench ceiling server failed:', error)
  process.exit(1)
})
