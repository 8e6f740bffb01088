import fp from 'fastify-plugin'
import helmet from '@fastify/helmet'
import { DOCS_PREFIX } from './swagger.js'


/** JSON answers load nothing and belong in no frame. */
const apiPolicy = {
  useDefaults: false,
  directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] }
}

/**
 * Swagger UI runs from its own files and calls this origin only. No
 * upgrade-insecure-requests: the service speaks plain HTTP, where it would
 * send the page's own requests to an https:// that does not answer.
 */
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

/**
 * Protective headers on every answer (nosniff, no framing, no referrer, a
 * Content-Security-Policy; helmet also removes X-Powered-By). No CORS on
 * purpose: keys belong on servers, so no browser page should call the API.
 */
export default fp(async (fastify) => {
  // Added before helmet registers, so that helmet's own onRoute hook sees the option.
  fastify.addHook('onRoute', (route) => {
    if (route.url === DOCS_PREFIX || route.url.startsWith(`${DOCS_PREFIX}/`)) route.helmet = { contentSecurityPolicy: docsPolicy }
  })
  await fastify.register(helmet, {
    contentSecurityPolicy: apiPolicy,
    frameguard: { action: 'deny' },
    // The service speaks plain HTTP; HSTS (and whether it covers subdomains) is for the TLS terminator in front.
    strictTransportSecurity: false
  })
}, { name: 'helmet' })
