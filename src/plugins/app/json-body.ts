import fp from 'fastify-plugin'
import { ApiError, badRequest } from '../../errors.js'

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * The only body parser, replacing Fastify's: invalid UTF-8 is refused instead of being
 * replaced with U+FFFD, and `__proto__` is parsed as a plain key (JSON.parse
 * never assigns a prototype) so that the metadata rules refuse it with the
 * contract's message. Fastify still applies the body limit before this runs.
 */
export default fp(async (fastify) => {
  // Only JSON is accepted: without this, text/plain would be parsed as a string and get 400, not 415.
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => {
    const buffer = body as Buffer
    if (buffer.length === 0) {
      done(badRequest('The request body is empty: send a JSON object'), undefined)
      return
    }
    let text: string
    try {
      text = utf8.decode(buffer)
    } catch {
      done(badRequest('The request body is not valid UTF-8'), undefined)
      return
    }
    try {
      done(null, JSON.parse(text))
    } catch {
      done(new ApiError(400, 'The request body is not valid JSON'), undefined)
    }
  })
}, { name: 'json-body' })
