import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'

/** Where Swagger UI is served: the one HTML page, with its scripts, styles and images. */
export const DOCS_PREFIX = '/docs'

/** OpenAPI 3.1, as TypeBox writes `null` as a JSON Schema type, which 3.0 cannot express; Swagger UI's assets from here, no CDN. */
export default fp(async (fastify) => {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Identify service',
        version: '1.0.0',
        description: 'A self-hostable reimplementation of DataFast\'s identify endpoint: link an anonymous visitor to a known user and store the user\'s profile metadata; read, list and erase the stored profiles.'
      },
      components: {
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            description: 'A df_ website key (its own website), or a dft_ account token with the permission each operation names: identify:write to identify, identify:read or analytics:read to read profiles, identify:delete to erase them (these need websiteId), and the Account API\'s own (tokens only)'
          }
        }
      }
    }
  })
  await fastify.register(swaggerUi, { routePrefix: DOCS_PREFIX })
  fastify.get('/openapi.json', { schema: { hide: true } }, async () => fastify.swagger())
}, { name: 'swagger' })
