/** The cookie DataFast's browser script keeps the visitor's id in, on your own domain. */
export const VISITOR_COOKIE = 'datafast_visitor_id'

/**
 * What the helpers need of a request: Express's `req` and Fastify's
 * `request` both fit, without this package depending on either.
 */
export interface RequestWithCookies {
  readonly headers: { readonly cookie?: string | readonly string[] | undefined }
  /** Filled by cookie-parser (Express) or @fastify/cookie, when one ran. */
  readonly cookies?: unknown
}

/**
 * The visitor id of a request: from `cookies` when a cookie parser filled
 * it, else from the Cookie header; undefined when there is none.
 */
export function visitorIdOf (request: RequestWithCookies): string | undefined {
  const parsed = request.cookies
  if (typeof parsed === 'object' && parsed !== null) {
    const value: unknown = (parsed as Record<string, unknown>)[VISITOR_COOKIE]
    if (typeof value === 'string' && value !== '') return value
  }
  const header = request.headers.cookie
  const lines = typeof header === 'string' ? [header] : header ?? []
  for (const line of lines) {
    const value = cookieValue(line, VISITOR_COOKIE)
    if (value !== undefined && value !== '') return value
  }
  return undefined
}

/**
 * One cookie's value from a Cookie header (RFC 6265 5.4: `name=value` pairs
 * separated by `;`), the first one of that name, URL-decoded as cookie
 * parsers do; a value that is not valid percent-encoding is kept as sent.
 */
export function cookieValue (header: string, name: string): string | undefined {
  for (const pair of header.split(';')) {
    const equals = pair.indexOf('=')
    if (equals === -1 || pair.slice(0, equals).trim() !== name) continue
    let value = pair.slice(equals + 1).trim()
    // RFC 6265 4.1.1 allows a value in double quotes.
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
    try {
      return decodeURIComponent(value)
    } catch {
      return value
    }
  }
  return undefined
}
