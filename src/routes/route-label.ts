import type { FastifyRequest } from 'fastify'

/** How logs, metrics and traces name a request: its route template, never the raw path (ids, query strings). */
export const routeLabel = (request: FastifyRequest): string => request.routeOptions.url ?? 'unmatched'
