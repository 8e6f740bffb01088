import { startTracing } from './start.js'

/*
 * Loaded before the server with `node --import ./dist/tracing/index.js` (npm start,
 * the Dockerfile, npm run dev): the instrumentations must hook Fastify,
 * mongodb and ioredis before the server imports them, and with --import
 * nothing of the server is loaded yet. Without OTEL_* settings asking for
 * traces it loads nothing else (docs/operations.md#tracing).
 */
try {
  await startTracing()
} catch (error) {
  console.error(`Tracing error: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
}
