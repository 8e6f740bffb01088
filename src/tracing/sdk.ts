import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { OTLPTraceExporter as OtlpProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto'
import { NodeSDK } from '@opentelemetry/sdk-node'
import { BatchSpanProcessor, ConsoleSpanExporter, type SpanExporter } from '@opentelemetry/sdk-trace-base'
import { ErrorTextRedactor } from './error-text-redactor.js'
import { instrumentations } from './instrumentations.js'
import { tracesExporters, type Tracing } from './start.js'

type Env = Record<string, string | undefined>

/** The service's name in traces when OTEL_SERVICE_NAME does not give one. */
const SERVICE_NAME = 'identify-service'

/** An OTLP exporter over HTTP in the protocol the environment names; the exporter reads the endpoint and headers itself. */
function otlpExporter (env: Env): SpanExporter {
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? '').trim() || 'http/protobuf'
  if (protocol === 'http/protobuf') return new OtlpProtobufExporter()
  if (protocol === 'http/json') return new OtlpJsonExporter()
  throw new Error(`OTEL_EXPORTER_OTLP_PROTOCOL=${JSON.stringify(protocol)} is invalid: expected http/protobuf or http/json`)
}

/** The exporters OTEL_TRACES_EXPORTER names (otlp when it is unset). */
function exportersFrom (env: Env): SpanExporter[] {
  const names = tracesExporters(env)
  return (names.length === 0 ? ['otlp'] : names).map((name) => {
    if (name === 'otlp') return otlpExporter(env)
    if (name === 'console') return new ConsoleSpanExporter()
    throw new Error(`OTEL_TRACES_EXPORTER=${JSON.stringify(env.OTEL_TRACES_EXPORTER)} is invalid: expected otlp, console or none`)
  })
}

/**
 * The Node SDK with traces only (Prometheus at /metrics has the metrics, and
 * pino the logs), the instrumentations of Fastify, mongodb and ioredis, and
 * every span's error texts removed before any exporter sees them. Sampling,
 * propagation, resource attributes and batching follow the SDK's own OTEL_*
 * variables.
 */
export function startSdk (env: Env, exporter: SpanExporter | undefined): Tracing {
  const exporters = exporter === undefined ? exportersFrom(env) : [exporter]
  const batches = exporters.map((each) => new BatchSpanProcessor(each))
  const sdk = new NodeSDK({
    ...(env.OTEL_SERVICE_NAME?.trim() ? {} : { serviceName: SERVICE_NAME }),
    instrumentations: instrumentations(),
    spanProcessors: [new ErrorTextRedactor(), ...batches],
    metricReaders: [],
    logRecordProcessors: []
  })
  sdk.start()
  return {
    flush: async () => { await Promise.all(batches.map(async (batch) => { await batch.forceFlush() })) },
    shutdown: async () => { await sdk.shutdown() }
  }
}
