import fp from 'fastify-plugin'
import helmet from 'helmet'
import { DOCS_PREFIX } from './swagger.js'


/** JSON answers load nothing and belong in no frame. */
const apiPolicy = {
  useDefaults: false,
  directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] }
}

/** No upgrade-insecure-requests: over plain HTTP it would send Swagger UI's requests to an https:// that does not answer. */
const docsPolicy = {
  useDefaults: false,
  directives: {
    defaultSrc: ["'self'"],
    baseUri: ["'self'"],
    connectSrc: ["'self'"],
    fontSrc: ["'self'", 'data:'],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    imgSrc: ["'self'", 'data:'],
    objectSrc: ["'none'"],
    scriptSrc: ["'self'"],
    scriptSrcAttr: ["'none'"],
    styleSrc: ["'self'", "'unsafe-inline'"]
  }
}

const common = {
  frameguard: { action: 'deny' },
  // The service speaks plain HTTP; HSTS (and whether it covers subdomains) is for the TLS terminator in front.
  strictTransportSecurity: false
} as const
// Built once per policy, not per request as @fastify/helmet did: docs/internals.md#helmet-middleware
const apiHeaders = helmet({ ...common, contentSecurityPolicy: apiPolicy })
const docsHeaders = helmet({ ...common, contentSecurityPolicy: docsPolicy })

const isDocs = (url: string | undefined): boolean => url !== undefined && (url === DOCS_PREFIX || url.startsWith(`${DOCS_PREFIX}/`))

/** No CORS on purpose: keys belong on servers (docs/security.md#response-headers-and-no-cors). */
export default fp(async (fastify) => {
  fastify.addHook('onRequest', (request, reply, done) => {
    // Since helmet 8.1 its middleware throws instead of passing an error on, so next() always means done.
    (isDocs(request.routeOptions.url) ? docsHeaders : apiHeaders)(request.raw, reply.raw, () => { done() })
  })
}, { name: 'helmet' })
