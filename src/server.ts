import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'

async function main (): Promise<void> {
  const config = loadConfig()
  if (config.MONGO_URL === '') {
    throw new ConfigError('MONGO_URL is not set: point it at your MongoDB, e.g. MONGO_URL=mongodb://localhost:27017/identify (npm run dev starts a local database for you)')
  }
  const app = await buildApp(config)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => { void app.close().then(() => process.exit(0)) })
  }
  await app.listen({ host: config.HOST, port: config.PORT })
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? `Configuration error: ${error.message}` : error)
  process.exit(1)
})
