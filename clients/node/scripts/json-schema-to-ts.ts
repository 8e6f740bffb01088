/**
 * A small JSON Schema to TypeScript emitter, for the handful of shapes the
 * service's TypeBox schemas use (objects, arrays, unions, literals, scalars).
 * Rules TypeScript cannot state (patterns, lengths, counts) are left out;
 * a construct it does not know fails loudly rather than emitting a wrong type.
 */

type Schema = Readonly<Record<string, unknown>>

/** A type to emit under a name, and to refer to by that name wherever an equal schema appears. */
export interface NamedSchema {
  name: string
  schema: unknown
  /** The doc comment above it; the schema's own description when absent. */
  description?: string
}

/** Keywords that only constrain values (TypeScript has no word for them) or only document them. */
const IGNORED_KEYWORDS = new Set([
  '$id', '$schema', 'title', 'description', 'examples', 'example', 'default', 'format', 'pattern', 'minLength', 'maxLength',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'minItems', 'maxItems', 'uniqueItems',
  'minProperties', 'maxProperties', 'propertyNames', 'not'
])
const TYPE_KEYWORDS = new Set(['type', 'const', 'enum', 'anyOf', 'oneOf', 'items', 'properties', 'required', 'additionalProperties'])

const isSchema = (value: unknown): value is Schema => typeof value === 'object' && value !== null && !Array.isArray(value)

function asSchema (value: unknown, where: string): Schema {
  if (!isSchema(value)) throw new Error(`${where}: not a JSON Schema object`)
  for (const keyword of Object.keys(value)) {
    if (!IGNORED_KEYWORDS.has(keyword) && !TYPE_KEYWORDS.has(keyword)) throw new Error(`${where}: the emitter does not handle "${keyword}"`)
  }
  return value
}

const DOCUMENTATION_KEYWORDS = new Set(['$id', 'title', 'description', 'examples', 'example'])

/**
 * Equal texts for schemas that state the same type, whatever their
 * documentation (the OpenAPI document moves examples and adds
 * descriptions); JSON.stringify drops TypeBox's symbol keys.
 */
const canonical = (schema: unknown): string =>
  JSON.stringify(schema, (key, value: unknown) => DOCUMENTATION_KEYWORDS.has(key) ? undefined : value)

const literal = (value: unknown): string => {
  if (typeof value === 'string') return `'${value.replaceAll('\\', '\\\\').replaceAll('\'', '\\\'')}'`
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value)
  throw new Error(`a literal of type ${typeof value} cannot be emitted`)
}

const propertyKey = (name: string): string => /^[A-Za-z_$][\w$]*$/.test(name) ? name : literal(name)

const docComment = (text: string, indent: string): string => `${indent}/** ${text.replaceAll('*/', '*\\/')} */\n`

/** A union without repeats; `unknown` absorbs every other member, as in TypeScript. */
function union (members: string[]): string {
  const unique = [...new Set(members)]
  if (unique.includes('unknown')) return 'unknown'
  return unique.join(' | ')
}

const SCALARS: Record<string, string> = { string: 'string', number: 'number', integer: 'number', boolean: 'boolean', null: 'null' }

class Emitter {
  private readonly names: Map<string, string>

  constructor (named: readonly NamedSchema[]) {
    this.names = new Map(named.map(({ name, schema }) => [canonical(schema), name]))
  }

  /** A type expression for `value`, by name when it equals a named schema. */
  reference (value: unknown, where: string, indent: string): string {
    return this.names.get(canonical(value)) ?? this.expression(asSchema(value, where), where, indent)
  }

  expression (schema: Schema, where: string, indent: string): string {
    if ('const' in schema) return literal(schema.const)
    if (Array.isArray(schema.enum)) return union(schema.enum.map(literal))
    if (Array.isArray(schema.anyOf ?? schema.oneOf)) return union(this.alternatives(schema, where, indent))
    const types: unknown[] = Array.isArray(schema.type) ? schema.type : [schema.type]
    return union(types.map((type) => {
      if (type === undefined) return 'unknown'
      if (typeof type === 'string' && type in SCALARS) return SCALARS[type] ?? 'unknown'
      if (type === 'array') return this.array(schema, where, indent)
      if (type === 'object') return this.object(schema, where, indent)
      throw new Error(`${where}: the emitter does not handle type ${JSON.stringify(type)}`)
    }))
  }

  /** The members of a union schema, each as a type expression; a schema that is no union is its own one member. */
  private alternatives (schema: Schema, where: string, indent: string): string[] {
    const alternatives = schema.anyOf ?? schema.oneOf
    if (!Array.isArray(alternatives)) return [this.expression(schema, where, indent)]
    return alternatives.map((member, n) => this.reference(member, `${where}.anyOf[${String(n)}]`, indent))
  }

  /** An object type; one that is a single undocumented line stays on one line. */
  private object (schema: Schema, where: string, indent: string): string {
    const lines = this.members(schema, where, `${indent}  `)
    if (lines.length === 1 && !lines[0]?.includes('/**')) return `{ ${lines[0]?.trim() ?? ''} }`
    return `{\n${lines.join('')}${indent}}`
  }

  private array (schema: Schema, where: string, indent: string): string {
    if (schema.items === undefined) return 'unknown[]'
    const item = this.reference(schema.items, `${where}.items`, indent)
    return item.includes(' ') ? `Array<${item}>` : `${item}[]`
  }

  /**
   * An object's members, one a line. JSON Schema's additionalProperties
   * covers only the fields not listed, which TypeScript cannot say: its
   * index signature must admit every listed field's type too, so it does.
   */
  members (schema: Schema, where: string, indent: string): string[] {
    const properties = isSchema(schema.properties) ? schema.properties : {}
    const required = new Set<unknown>(Array.isArray(schema.required) ? schema.required : [])
    const lines: string[] = []
    const types: string[] = []
    for (const [name, value] of Object.entries(properties)) {
      const property = asSchema(value, `${where}.${name}`)
      const type = this.reference(property, `${where}.${name}`, indent)
      const optional = !required.has(name)
      types.push(type, ...(optional ? ['undefined'] : []))
      const description = typeof property.description === 'string' ? docComment(property.description, indent) : ''
      lines.push(`${description}${indent}${propertyKey(name)}${optional ? '?' : ''}: ${type}\n`)
    }
    const extra = schema.additionalProperties
    if (extra !== false) {
      const type = extra === undefined || extra === true ? 'unknown' : this.reference(extra, `${where}.additionalProperties`, indent)
      // A listed field's type that the index type already names as a member is not repeated.
      const covered = isSchema(extra) ? this.alternatives(asSchema(extra, where), where, indent) : []
      lines.push(`${indent}[field: string]: ${union([type, ...types.filter((listed) => !covered.includes(listed))])}\n`)
    }
    if (lines.length === 0) throw new Error(`${where}: an object that admits no field`)
    return lines
  }
}

/** Every named schema as an exported interface (objects) or type alias (anything else), in the given order. */
export function emitTypes (named: readonly NamedSchema[]): string {
  const emitter = new Emitter(named)
  return named.map(({ name, schema, description }) => {
    const root = asSchema(schema, name)
    const doc = description ?? (typeof root.description === 'string' ? root.description : undefined)
    const comment = doc === undefined ? '' : docComment(doc, '')
    const isObject = root.type === 'object' && !('anyOf' in root)
    return isObject
      ? `${comment}export interface ${name} {\n${emitter.members(root, name, '  ').join('')}}\n`
      : `${comment}export type ${name} = ${emitter.expression(root, name, '')}\n`
  }).join('\n')
}
