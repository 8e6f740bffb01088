import { BSON } from 'mongodb'
import { conflict, invalid } from './errors.js'

export type Metadata = Record<string, unknown>

export interface MetadataLimits extends ProfileLimits {
  maxFields: number
  /** As UTF-8 JSON. */
  maxBytes: number
  /** Inside one field's value, the value itself being level 1. */
  maxDepth: number
}

export const MAX_KEY_LENGTH = 128
/** Names that would reach an object's prototype in code that copies metadata naively. */
export const FORBIDDEN_KEYS: readonly string[] = ['__proto__', 'constructor', 'prototype']
const forbiddenKeys = new Set(FORBIDDEN_KEYS)
const placeholderWords = new Set(['undefined', 'null'])

const NUL = '\\u0000'
/** White space as JavaScript and Go define it: a top-level name becomes an update path, refused with it at an edge (docs/api.md#white-space-around-field-names). */
const EDGE_SPACE = '\\s\\u0085'
/** A key at any depth: no "$" first (an operator), no "." (a path), no NUL. */
export const KEY_PATTERN = `^[^$.${NUL}][^.${NUL}]*$`
export const FIELD_NAME_PATTERN = `^[^$.${EDGE_SPACE}${NUL}](?:[^.${NUL}]*[^.${EDGE_SPACE}${NUL}])?$`
/** A string value: no NUL (docs/api.md#nul-and-unpaired-surrogates); unpaired surrogates only checkKey and checkValue can name. */
export const STORABLE_STRING_PATTERN = `^[^${NUL}]*$`
const keyShape = new RegExp(KEY_PATTERN)
const fieldNameShape = new RegExp(FIELD_NAME_PATTERN)
const unpairedSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/** Empty, blank, or only the words undefined and null: what templating an unset value produces. */
export function isPlaceholder (value: unknown): boolean {
  if (typeof value !== 'string') return false
  // Split rather than one regular expression: nested white-space runs in a pattern backtrack quadratically on long strings.
  const trimmed = value.trim()
  return trimmed === '' || trimmed.split(/\s+/).every((word) => placeholderWords.has(word))
}

/** What every MongoDB-compatible engine stores exactly as sent: no NUL, no unpaired surrogate (not UTF-8). */
export function isStorableString (value: string): boolean {
  return !value.includes('\0') && !unpairedSurrogate.test(value)
}

/** Shortened and quoted, so that a hostile key cannot flood or break a message. */
export function quoteKey (key: string): string {
  return JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}…` : key)
}

function checkKey (key: string, path: string): void {
  const where = path === '' ? 'metadata field' : `key in ${path}`
  // Characters are code points, as for user_id, so an emoji counts once.
  const length = Array.from(key).length
  if (length < 1 || length > MAX_KEY_LENGTH) {
    throw invalid(`${where} ${quoteKey(key)} must be 1 to ${MAX_KEY_LENGTH} characters long`)
  }
  if (!isStorableString(key)) throw invalid(`${where} ${quoteKey(key)} must not contain NUL characters or unpaired surrogates`)
  if (forbiddenKeys.has(key)) throw invalid(`${where} ${quoteKey(key)} is a reserved name (__proto__, constructor and prototype are never accepted)`)
  if (!(path === '' ? fieldNameShape : keyShape).test(key)) throw invalid(`${where} ${quoteKey(key)} ${brokenShapeRule(key)}`)
}

export function checkFieldName (name: string): void {
  checkKey(name, '')
}

function brokenShapeRule (key: string): string {
  if (key.startsWith('$')) return 'must not start with "$"'
  if (key.includes('.')) return 'must not contain "."'
  return 'must not start or end with white space'
}

/** Walks one value; `depth` is the nesting level of the container that holds it (0 for a field's value). */
function checkValue (value: unknown, path: string, depth: number, maxDepth: number): void {
  if (typeof value === 'string') {
    if (!isStorableString(value)) throw invalid(`${path} must not contain NUL characters or unpaired surrogates`)
    return
  }
  // JSON.parse turns 1e400 into Infinity, which JSON cannot give back.
  if (typeof value === 'number' && !Number.isFinite(value)) throw invalid(`${path} must be a finite number`)
  if (value === null || typeof value !== 'object') return
  if (depth + 1 > maxDepth) {
    throw invalid(`${path} nests objects or arrays more than ${maxDepth} deep inside the field's value (METADATA_MAX_DEPTH)`)
  }
  if (Array.isArray(value)) {
    value.forEach((item, index) => {
      // A deliberate rule of the API: docs/api.md#arrays-inside-arrays
      if (Array.isArray(item)) throw invalid(`${path}[${index}] is an array inside an array, which is not supported`)
      checkValue(item, `${path}[${index}]`, depth + 1, maxDepth)
    })
    return
  }
  for (const [key, item] of Object.entries(value)) {
    checkKey(key, path)
    checkValue(item, `${path}.${key}`, depth + 1, maxDepth)
  }
}

/** Every metadata rule (docs/api.md#identify-metadata-field-names on); returns the fields to store, placeholders dropped (docs/api.md#identify-placeholders). */
export function checkMetadata (metadata: Metadata, limits: MetadataLimits): Metadata {
  const names = Object.keys(metadata)
  if (names.length > limits.maxFields) {
    throw invalid(`metadata has ${names.length} fields; at most ${limits.maxFields} are allowed in one request (METADATA_MAX_FIELDS)`)
  }
  const kept: Metadata = {}
  for (const name of names) {
    const value = metadata[name]
    checkKey(name, '')
    checkValue(value, name, 0, limits.maxDepth)
    if (!isPlaceholder(value)) kept[name] = value
  }
  // Measured after the depth check: JSON.stringify recurses, and a body nested thousands deep would overflow the stack.
  const bytes = Buffer.byteLength(JSON.stringify(metadata))
  if (bytes > limits.maxBytes) {
    throw invalid(`metadata is ${bytes} bytes as JSON; at most ${limits.maxBytes} are allowed in one request (METADATA_MAX_BYTES)`)
  }
  return kept
}

export interface ProfileLimits {
  profileMaxFields: number
  /** As BSON, the form it is stored in. */
  profileMaxBytes: number
}

/** What one identify body does to a profile's metadata (docs/api.md#identify-operators). */
export interface MetadataChange {
  set: Metadata
  setOnce: Metadata
  unset: readonly string[]
}

export interface MergePlan {
  changed: boolean
  merged: Metadata
  /** Every plain field sent and each once-field the profile lacked. */
  set: Metadata
  /** Every name sent, so that concurrent writes end in the state of some serial order. */
  unset: readonly string[]
}

/** The per-profile limits of a profile made by this change alone: a new profile; its metadata. */
export function checkProfileLimits (change: MetadataChange, limits: ProfileLimits): Metadata {
  return planMerge({}, change, limits).merged
}

/** Over a limit is a 409, yet a call that adds and grows nothing is never refused (docs/api.md#identify-profile-limits). */
export function planMerge (stored: Metadata, change: MetadataChange, limits: ProfileLimits): MergePlan {
  const set: Metadata = { ...change.set }
  for (const [name, value] of Object.entries(change.setOnce)) {
    if (!Object.hasOwn(stored, name)) set[name] = value
  }
  let added = 0
  let changed = false
  for (const [name, value] of Object.entries(set)) {
    if (!Object.hasOwn(stored, name)) {
      added++
      changed = true
    } else if (!jsonEqual(stored[name], value)) {
      changed = true
    }
  }
  const removed = change.unset.filter((name) => Object.hasOwn(stored, name)).length
  if (removed > 0) changed = true
  const merged: Metadata = { ...stored, ...set }
  for (const name of change.unset) Reflect.deleteProperty(merged, name)
  const total = Object.keys(stored).length + added - removed
  if (added > 0 && total > limits.profileMaxFields && total > Object.keys(stored).length) {
    throw conflict(`the profile would hold ${total} metadata fields; at most ${limits.profileMaxFields} are allowed (PROFILE_MAX_FIELDS)`)
  }
  if (changed) {
    const bytes = BSON.calculateObjectSize(merged)
    if (bytes > limits.profileMaxBytes && bytes > BSON.calculateObjectSize(stored)) {
      throw conflict(`the profile's metadata would be ${bytes} bytes; at most ${limits.profileMaxBytes} are allowed (PROFILE_MAX_BYTES)`)
    }
  }
  return { changed, merged, set, unset: change.unset }
}

/** Equality of JSON values: arrays in order, object keys in any order. */
export function jsonEqual (a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, index) => jsonEqual(item, b[index]))
  }
  const left = a as Metadata
  const right = b as Metadata
  const keys = Object.keys(left)
  return keys.length === Object.keys(right).length &&
    keys.every((key) => Object.hasOwn(right, key) && jsonEqual(left[key], right[key]))
}
