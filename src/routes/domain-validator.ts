import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox'
import type { FastifyRequest, FastifySchemaCompiler } from 'fastify'

/** The domain checks of a route's parts: params and query strings always reach them as objects. */
export interface DomainChecks {
  body?: (body: unknown) => unknown
  params?: (params: Record<string, unknown>) => unknown
  querystring?: (query: Record<string, unknown>) => unknown
}

/** What each check returned, as the handler finds it on the request. */
export type CheckedParts<Checks extends DomainChecks> = { [Part in keyof Checks]: Checks[Part] extends (input: never) => infer Checked ? Checked : never }

/**
 * A route's validator: the parts with a domain check are validated once, by
 * that check (which names the broken rule, and which the command line and
 * batch paths apply too), and replaced by what it returns; their schemas state
 * the same rules for OpenAPI and fuzzers. Other parts go to TypeBox.
 */
function domainValidator (checks: DomainChecks): FastifySchemaCompiler<unknown> {
  return (route) => {
    const check = checks[route.httpPart as keyof DomainChecks]
    return check === undefined
      ? TypeBoxValidatorCompiler(route as Parameters<typeof TypeBoxValidatorCompiler>[0])
      // Fastify hands params and query strings as objects, bodies as parsed.
      : (data: unknown) => ({ value: check(data as Record<string, unknown>) })
  }
}

/**
 * A route's domain checks: its validator, and the checked parts typed as the
 * checks return them, so that no handler casts what the validator replaced.
 */
export function domainChecked<Checks extends DomainChecks> (checks: Checks) {
  return {
    validatorCompiler: domainValidator(checks),
    // The one place that trusts the validator: it replaced each checked part with its check's result.
    parts: (request: FastifyRequest): CheckedParts<Checks> => ({ body: request.body, params: request.params, querystring: request.query }) as CheckedParts<Checks>
  }
}
