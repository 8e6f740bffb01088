import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { limitHeapGrowth } from './runtime/heap.js'
import { stopTracing, tracingRequested, tracingStarted } from './tracing/start.js'

async function main (): Promise<void> {
  const config = loadConfig()
  if (config.MONGO_URL === '') {
    throw new ConfigError('MONGO_URL is not set: point it at your MongoDB, e.g. MONGO_URL=mongodb://localhost:27017/identify (npm run dev starts a local database instead)')
  }
  limitHeapGrowth()
  const app = await buildApp(config)
  if (tracingRequested() && !tracingStarted()) {
    app.log.warn('OTEL_* settings ask for traces, but tracing was not loaded before the server: start it with node --import ./dist/tracing/index.js dist/server.js')
  }
  closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'closing after an uncaught error')
    else app.log.info({ signal }, 'closing')
    await app.close()
    // The spans of the last requests are still batched.
    await stopTracing()
  })
  await app.listen({ host: config.HOST, port: config.PORT })
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? `Configuration error: ${error.message}` : error)
  process.exit(1)
})
