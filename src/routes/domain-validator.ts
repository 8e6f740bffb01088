import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox'
import type { FastifyRequest, FastifySchemaCompiler } from 'fastify'

/** The domain checks of a route's parts: params and query strings always reach them as objects. */
export interface DomainChecks {
  body?: (body: unknown) => unknown
  params?: (params: Record<string, unknown>) => unknown
  querystring?: (query: Record<string, unknown>) => unknown
}

export type CheckedParts<Checks extends DomainChecks> = { [Part in keyof Checks]: Checks[Part] extends (input: never) => infer Checked ? Checked : never }

/** Why parts with a domain check skip TypeBox: docs/internals.md#route-validation-by-domain-checks */
function domainValidator (checks: DomainChecks): FastifySchemaCompiler<unknown> {
  return (route) => {
    const check = checks[route.httpPart as keyof DomainChecks]
    return check === undefined
      ? TypeBoxValidatorCompiler(route as Parameters<typeof TypeBoxValidatorCompiler>[0])
      : (data: unknown) => ({ value: check(data as Record<string, unknown>) })
  }
}

/** The validator, and the checked parts typed as the checks return them, so that no handler casts. */
export function domainChecked<Checks extends DomainChecks> (checks: Checks) {
  return {
    validatorCompiler: domainValidator(checks),
    // The one place that trusts the validator: it replaced each checked part with its check's result.
    parts: (request: FastifyRequest): CheckedParts<Checks> => ({ body: request.body, params: request.params, querystring: request.query }) as CheckedParts<Checks>
  }
}
