import { once } from 'node:events'
import { createServer } from 'node:http'

/**
 * An OTLP/HTTP receiver that accepts every export and keeps nothing: the
 * traced ceiling pays for building, batching, encoding and sending its
 * spans, as it would to a real collector, but not for storing them.
 */
export interface OtlpSink {
  /** The base URL to give as OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces). */
  url: string
  /** Export requests and bytes received so far: a traced run that sent nothing measured nothing. */
  received: () => { requests: number, bytes: number }
  close: () => Promise<void>
}

export async function startOtlpSink (): Promise<OtlpSink> {
  let requests = 0
  let bytes = 0
  const server = createServer((request, response) => {
    request.on('data', (chunk: Buffer) => { bytes += chunk.length })
    request.on('end', () => {
      requests++
      // An empty ExportTraceServiceResponse: every span accepted.
      response.writeHead(200, { 'content-type': request.headers['content-type'] ?? 'application/x-protobuf' })
      response.end()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('the OTLP sink has no TCP address')
  return {
    url: `http://127.0.0.1:${address.port}`,
    received: () => ({ requests, bytes }),
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  }
}
