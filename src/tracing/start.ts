import { register } from 'node:module'
import type { SpanExporter } from '@opentelemetry/sdk-trace-base'

/*
 * Whether and how tracing starts. This module loads nothing of OpenTelemetry
 * until tracing is asked for: the SDK and the instrumentations come in by a
 * dynamic import, so a process without OTEL_* settings runs no tracing code.
 */

type Env = Record<string, string | undefined>

const isSet = (value: string | undefined): boolean => value !== undefined && value.trim() !== ''

/** The exporters OTEL_TRACES_EXPORTER names, lower-cased; empty when it is unset. */
export function tracesExporters (env: Env): string[] {
  return (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((name) => name.trim().toLowerCase()).filter((name) => name !== '')
}

/**
 * Tracing is off unless an OTLP endpoint or a traces exporter is set, as the
 * SDK's own variables say (docs/operations.md#tracing); OTEL_SDK_DISABLED=true
 * and OTEL_TRACES_EXPORTER=none keep it off.
 */
export function tracingRequested (env: Env = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false
  const exporters = tracesExporters(env)
  if (exporters.includes('none')) return false
  return exporters.length > 0 || isSet(env.OTEL_EXPORTER_OTLP_ENDPOINT) || isSet(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
}

export interface TracingOptions {
  env?: Env
  /** Where spans go instead of the exporters the environment names (a test's in-memory exporter); tracing then starts whatever the environment says. */
  exporter?: SpanExporter
}

export interface Tracing {
  /** Exports the spans still batched. */
  flush: () => Promise<void>
  /** Flushes, then stops exporting. */
  shutdown: () => Promise<void>
}

/**
 * The packages whose instrumentation patches what the package itself
 * exports, and which the app imports rather than requires: an ESM import
 * of a CommonJS package bypasses require(), so they go through
 * import-in-the-middle's loader hook. mongodb is patched in the files it
 * requires itself, and Fastify through a diagnostics channel; every other
 * module loads unwrapped.
 */
const IMPORT_HOOKED = ['ioredis']

let started: Tracing | null = null

/**
 * Starts the SDK and its instrumentations when asked for, and returns null
 * otherwise. It must run before anything imports fastify, mongodb or ioredis:
 * the instrumentations hook those modules as they load (src/tracing/index.ts).
 */
export async function startTracing (options: TracingOptions = {}): Promise<Tracing | null> {
  const env = options.env ?? process.env
  if (started !== null) return started
  if (options.exporter === undefined && !tracingRequested(env)) return null
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url, { data: { include: IMPORT_HOOKED } })
  const { startSdk } = await import('./sdk.js')
  started = startSdk(env, options.exporter)
  return started
}

/** True once startTracing started the SDK in this process. */
export const tracingStarted = (): boolean => started !== null

/** Flushes and stops tracing, if it was started; the server calls it as it closes. */
export async function stopTracing (): Promise<void> {
  const tracing = started
  started = null
  await tracing?.shutdown()
}
