import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox'
import type { FastifySchemaCompiler } from 'fastify'

type RequestPart = 'body' | 'params' | 'querystring'

/**
 * A route's validator: the parts with a domain check are validated once, by
 * that check (which names the broken rule, and which the command line and
 * batch paths apply too), and replaced by what it returns; their schemas state
 * the same rules for OpenAPI and fuzzers. Other parts go to TypeBox.
 */
export function domainValidator (checks: Partial<Record<RequestPart, (data: unknown) => unknown>>): FastifySchemaCompiler<unknown> {
  return (route) => {
    const check = checks[route.httpPart as RequestPart]
    return check === undefined
      ? TypeBoxValidatorCompiler(route as Parameters<typeof TypeBoxValidatorCompiler>[0])
      : (data: unknown) => ({ value: check(data) })
  }
}
