import { describe, expect, it } from 'vitest'
import { checkMetadata, isPlaceholder, isStorableString, jsonEqual, planMerge, type Metadata, type MetadataLimits } from '../src/domain/metadata.js'
import { DomainError, type DomainErrorKind } from '../src/domain/errors.js'

/* Unit tests of the metadata rules of docs/api.md#identify (names, values, limits, placeholders, merge), as pure functions. */

const defaults: MetadataLimits = { maxFields: 100, maxBytes: 32 * 1024, maxDepth: 5, profileMaxFields: 500, profileMaxBytes: 1024 * 1024 }
const fieldsUpTo = (profileMaxFields: number) => ({ profileMaxFields, profileMaxBytes: 1024 * 1024 })

/** Parses JSON text, so that keys like __proto__ become own keys as they do in a request body. */
const parse = (text: string): Metadata => JSON.parse(text) as Metadata

/** The domain error a call throws: `invalid` for a request's own rules, `conflict` for the per-profile limits. */
function rejection (run: () => unknown, kind: DomainErrorKind = 'invalid'): DomainError {
  try {
    run()
  } catch (error) {
    expect(error).toBeInstanceOf(DomainError)
    expect((error as DomainError).kind).toBe(kind)
    return error as DomainError
  }
  throw new Error(`expected a DomainError of kind ${kind}, but nothing was thrown`)
}

const fields = (count: number, value: unknown = 1): Metadata =>
  Object.fromEntries(Array.from({ length: count }, (_, index) => [`f${String(index)}`, value]))

describe('isPlaceholder', () => {
  it.each(['', ' ', '   ', '\t\n', 'undefined', 'null', 'undefined undefined', 'null undefined', 'undefined null',
    'null null null', 'undefined\tnull', ' undefined ', 'null\nundefined'])('%j is a placeholder', (value) => {
    expect(isPlaceholder(value)).toBe(true)
  })

  it.each(['nullable', 'undefined-ish', 'undefinednull', 'null,undefined', 'null.', 'Ada null', 'null Ada', 'none', 'nil',
    '0', 'false', 'NaN', 'x', '"null"'])('%j is not a placeholder', (value) => {
    expect(isPlaceholder(value)).toBe(false)
  })

  it.each([null, undefined, 0, false, [], {}, ['']])('the non-string %j is not a placeholder', (value) => {
    expect(isPlaceholder(value)).toBe(false)
  })
})

describe('isStorableString', () => {
  it.each(['', 'Ada', 'é', '😀', 'a😀b', '\u{10FFFF}', '\uffff', 'line\nbreak', '\u0001'])('%j is storable', (value) => {
    expect(isStorableString(value)).toBe(true)
  })

  it.each([
    ['NUL alone', '\u0000'],
    ['NUL inside', 'a\u0000b'],
    ['an unpaired high surrogate at the end', 'a\ud800'],
    ['an unpaired high surrogate before a letter', '\ud83dx'],
    ['an unpaired low surrogate at the start', '\udc00a'],
    ['an unpaired low surrogate after a letter', 'a\udfff'],
    ['surrogates in the wrong order', '\udc00\ud800'],
    ['two high surrogates', '\ud800\ud800'],
    ['a pair followed by a lone low surrogate', '😀\ude00']
  ])('a string with %s is not storable', (_case, value) => {
    expect(isStorableString(value)).toBe(false)
  })
})

describe('jsonEqual', () => {
  it.each([
    [1, 1],
    ['a', 'a'],
    [null, null],
    [true, true],
    [[], []],
    [{}, {}],
    [[1, [2, { a: null }]], [1, [2, { a: null }]]],
    [{ a: 1, b: { c: 2, d: [3] } }, { b: { d: [3], c: 2 }, a: 1 }]
  ])('%j equals %j', (a, b) => {
    expect(jsonEqual(a, b)).toBe(true)
    expect(jsonEqual(b, a)).toBe(true)
  })

  it.each([
    [1, '1'],
    [0, false],
    ['', null],
    [null, {}],
    [null, []],
    [[], {}],
    [[1, 2], [2, 1]],
    [[1], [1, 1]],
    [{ a: 1 }, { a: 1, b: 2 }],
    [{ a: null }, {}],
    [{ a: undefined }, { b: undefined }],
    [{ a: { b: 1 } }, { a: { b: '1' } }],
    [{ 0: 'x' }, ['x']]
  ])('%j differs from %j', (a, b) => {
    expect(jsonEqual(a, b)).toBe(false)
    expect(jsonEqual(b, a)).toBe(false)
  })
})

describe('checkMetadata', () => {
  it('returns the fields to store with the placeholders dropped, values untouched', () => {
    const sent = { name: 'Ada', image: '', blank: '   ', u: 'undefined', n: 'null undefined', cleared: null, zero: 0, nested: { empty: '' } }
    expect(checkMetadata(sent, defaults)).toEqual({ name: 'Ada', cleared: null, zero: 0, nested: { empty: '' } })
    expect(sent.image).toBe('')
  })

  it('returns an empty object for an all-placeholder or empty metadata', () => {
    expect(checkMetadata({}, defaults)).toEqual({})
    expect(checkMetadata({ a: '', b: 'null' }, defaults)).toEqual({})
  })

  describe('field names', () => {
    it.each([
      ['empty', '', /1 to 128/],
      ['129 characters long', 'k'.repeat(129), /1 to 128/],
      ['starting with $', '$inc', /"\$"/],
      ['holding a dot', 'a.b', /"\."/],
      ['holding NUL', 'a\u0000', /NUL/],
      ['holding an unpaired surrogate', 'a\ud800', /surrogate/],
      ['__proto__', '__proto__', /reserved/],
      ['constructor', 'constructor', /reserved/],
      ['prototype', 'prototype', /reserved/]
    ])('rejects a key that is %s at the top level, inside an object and inside an array', (_case, key, rule) => {
      const encoded = JSON.stringify(key)
      for (const text of [
        `{${encoded}:1}`,
        `{"profile":{${encoded}:1}}`,
        `{"list":[1,{${encoded}:1}]}`,
        `{"a":{"b":[{"c":{${encoded}:1}}]}}`
      ]) {
        expect(rejection(() => checkMetadata(parse(text), defaults)).message, text).toMatch(rule)
      }
    })

    it('names the field at the top level and the path of a nested key', () => {
      expect(rejection(() => checkMetadata({ $set: 1 }, defaults)).message).toBe('metadata field "$set" must not start with "$"')
      expect(rejection(() => checkMetadata({ profile: { list: [{ 'a.b': 1 }] } }, defaults)).message)
        .toBe('key in profile.list[0] "a.b" must not contain "."')
    })

    it('shortens a long key in the message', () => {
      const message = rejection(() => checkMetadata({ ['k'.repeat(5000)]: 1 }, defaults)).message
      expect(message.length).toBeLessThan(200)
    })

    it('accepts keys of 1 and 128 characters, a $ or a reserved word that is only part of a key', () => {
      const metadata = { k: 1, ['k'.repeat(128)]: 2, price$: 3, __proto__x: 4, Constructor: 5, nested: { ['n'.repeat(128)]: [{ a$: 1 }] } }
      expect(checkMetadata(metadata, defaults)).toEqual(metadata)
    })
  })

  describe('values', () => {
    it.each([
      ['NUL at the top level', { a: '\u0000' }],
      ['NUL nested', { a: { b: 'x\u0000' } }],
      ['NUL inside an array', { a: ['ok', 'x\u0000y'] }],
      ['an unpaired surrogate', { a: '\ud800' }],
      ['an unpaired surrogate deep inside', { a: [{ b: ['\udc00'] }] }]
    ])('rejects a string with %s', (_case, metadata) => {
      expect(rejection(() => checkMetadata(metadata, defaults)).message).toMatch(/\ba\b.*NUL characters or unpaired surrogates/)
    })

    it('rejects NUL even in a placeholder position: a placeholder check does not skip the rules', () => {
      expect(rejection(() => checkMetadata({ a: 'null\u0000' }, defaults)).message).toMatch(/NUL/)
    })

    it('accepts every kind of JSON value', () => {
      const metadata = { s: 'x', n: -1.5, i: 2 ** 40, t: true, f: false, z: null, a: [1, 'x', null, { b: [2] }], o: { p: { q: [] } } }
      expect(checkMetadata(metadata, defaults)).toEqual(metadata)
    })

    it('refuses an array directly inside an array, at any depth, naming where', () => {
      expect(rejection(() => checkMetadata({ a: [1, [2]] }, defaults)).message).toMatch(/^a\[1\] is an array inside an array/)
      expect(rejection(() => checkMetadata({ o: { p: [{ q: [[]] }] } }, defaults)).message).toMatch(/^o\.p\[0\]\.q\[0\] /)
    })
  })

  describe('depth', () => {
    it('accepts the contract\'s example {"a":{"b":{"c":{"d":{"e":1}}}}} as a field\'s value and rejects one more level', () => {
      const example = parse('{"a":{"b":{"c":{"d":{"e":1}}}}}')
      expect(checkMetadata({ f: example }, defaults)).toEqual({ f: example })
      const message = rejection(() => checkMetadata({ f: parse('{"a":{"b":{"c":{"d":{"e":{"g":1}}}}}}') }, defaults)).message
      expect(message).toMatch(/^f\.a\.b\.c\.d\.e /)
      expect(message).toMatch(/\b5\b/)
      expect(message).toMatch(/METADATA_MAX_DEPTH/)
    })

    it('counts arrays as levels', () => {
      expect(checkMetadata({ a: [{ b: [{ c: [1] }] }] }, defaults)).toEqual({ a: [{ b: [{ c: [1] }] }] })
      expect(rejection(() => checkMetadata({ a: [{ b: [{ c: [{}] }] }] }, defaults)).message).toMatch(/^a\[0\]\.b\[0\]\.c\[0\] .*\b5\b/)
    })

    it('counts an empty object or array as a level', () => {
      expect(checkMetadata({ a: { b: { c: { d: { e: [] } } } } }, defaults)).toEqual({ a: { b: { c: { d: { e: [] } } } } })
      rejection(() => checkMetadata({ f: { a: { b: { c: { d: { e: {} } } } } } }, defaults))
      rejection(() => checkMetadata({ a: [{ b: [{ c: [{}] }] }] }, defaults))
    })

    it('follows maxDepth, a field\'s value being level 1', () => {
      const one = { ...defaults, maxDepth: 1 }
      expect(checkMetadata({ a: 1, b: { x: 'y' }, c: [1, null] }, one)).toEqual({ a: 1, b: { x: 'y' }, c: [1, null] })
      rejection(() => checkMetadata({ a: { b: {} } }, one))
      rejection(() => checkMetadata({ a: [{}] }, one))
      const three = { ...defaults, maxDepth: 3 }
      expect(checkMetadata({ a: { b: [{ c: 1 }] } }, three)).toEqual({ a: { b: [{ c: 1 }] } })
      expect(rejection(() => checkMetadata({ a: { b: [{ c: [] }] } }, three)).message).toMatch(/\b3\b/)
    })

    it('refuses numbers JSON cannot carry back, naming the field', () => {
      expect(rejection(() => checkMetadata(parse('{"big":1e400}'), defaults)).message).toMatch(/^big must be a finite number/)
    })
  })

  describe('fields per request', () => {
    it('accepts maxFields fields and rejects one more, naming the limit', () => {
      expect(Object.keys(checkMetadata(fields(100), defaults))).toHaveLength(100)
      const message = rejection(() => checkMetadata(fields(101), defaults)).message
      expect(message).toMatch(/\b101\b/)
      expect(message).toMatch(/\b100\b/)
      expect(message).toMatch(/METADATA_MAX_FIELDS/)
    })

    it('counts placeholder fields too', () => {
      rejection(() => checkMetadata({ ...fields(100), extra: '' }, defaults))
    })

    it('follows a configured maxFields', () => {
      const limits = { ...defaults, maxFields: 2 }
      expect(checkMetadata(fields(2), limits)).toEqual(fields(2))
      expect(rejection(() => checkMetadata(fields(3), limits)).message).toMatch(/\b2\b/)
    })
  })

  describe('bytes per request', () => {
    const sized = (bytes: number, filler = 'x'): Metadata => {
      const overhead = Buffer.byteLength('{"blob":""}')
      const unit = Buffer.byteLength(filler)
      const metadata = { blob: filler.repeat(Math.floor((bytes - overhead) / unit)) + 'x'.repeat((bytes - overhead) % unit) }
      expect(Buffer.byteLength(JSON.stringify(metadata))).toBe(bytes)
      return metadata
    }

    it('accepts exactly maxBytes of metadata as JSON and rejects one byte more, naming the limit', () => {
      expect(checkMetadata(sized(32768), defaults)).toEqual(sized(32768))
      const message = rejection(() => checkMetadata(sized(32769), defaults)).message
      expect(message).toMatch(/\b32768\b/)
      expect(message).toMatch(/METADATA_MAX_BYTES/)
    })

    it('counts UTF-8 bytes, not UTF-16 units', () => {
      rejection(() => checkMetadata(sized(32769, 'é'), defaults))
      rejection(() => checkMetadata(sized(32769, '😀'), defaults))
    })

    it('follows a configured maxBytes', () => {
      const limits = { ...defaults, maxBytes: 100 }
      expect(checkMetadata(sized(100), limits)).toEqual(sized(100))
      expect(rejection(() => checkMetadata(sized(101), limits)).message).toMatch(/\b100\b/)
    })
  })
})

/** A change of plain fields only, as identify bodies without operators make. */
const plain = (set: Metadata) => ({ set, setOnce: {}, unset: [] })

describe('planMerge', () => {
  it('is unchanged when every sent field already holds an equal value', () => {
    const stored = { name: 'Ada', address: { city: 'London', zip: 'N1' }, tags: ['a'], gone: null }
    expect(planMerge(stored, plain({}), fieldsUpTo(500))).toMatchObject({ changed: false })
    expect(planMerge(stored, plain({ name: 'Ada' }), fieldsUpTo(500))).toMatchObject({ changed: false })
    expect(planMerge(stored, plain({ address: { zip: 'N1', city: 'London' }, gone: null, tags: ['a'] }), fieldsUpTo(500))).toMatchObject({ changed: false })
  })

  it('is changed by a new value, a new field, or null over a value', () => {
    const stored = { name: 'Ada', address: { city: 'London' } }
    expect(planMerge(stored, plain({ name: 'Bob' }), fieldsUpTo(500))).toMatchObject({ changed: true })
    expect(planMerge(stored, plain({ plan: 'pro' }), fieldsUpTo(500))).toMatchObject({ changed: true })
    expect(planMerge(stored, plain({ plan: null }), fieldsUpTo(500))).toMatchObject({ changed: true })
    expect(planMerge(stored, plain({ name: null }), fieldsUpTo(500))).toMatchObject({ changed: true })
    expect(planMerge(stored, plain({ address: { city: 'London', zip: 'N1' } }), fieldsUpTo(500))).toMatchObject({ changed: true })
    expect(planMerge(stored, plain({ address: {} }), fieldsUpTo(500))).toMatchObject({ changed: true })
  })

  it('allows a profile of exactly profileMaxFields fields and rejects one more, naming the limit', () => {
    expect(planMerge(fields(499), plain({ extra: 1 }), fieldsUpTo(500))).toMatchObject({ changed: true })
    expect(planMerge({}, plain(fields(500)), fieldsUpTo(500))).toMatchObject({ changed: true })
    const message = rejection(() => planMerge(fields(500), plain({ extra: 1 }), fieldsUpTo(500)), 'conflict').message
    expect(message).toMatch(/\b501\b/)
    expect(message).toMatch(/\b500\b/)
    expect(message).toMatch(/PROFILE_MAX_FIELDS/)
  })

  it('does not count replaced fields as new ones', () => {
    expect(planMerge(fields(500), plain({ f0: 2, f499: null }), fieldsUpTo(500))).toMatchObject({ changed: true })
    expect(planMerge(fields(500), plain(fields(500)), fieldsUpTo(500))).toMatchObject({ changed: false })
  })

  it('counts stored null values as fields', () => {
    rejection(() => planMerge({ a: null, b: null }, plain({ c: 1 }), fieldsUpTo(2)), 'conflict')
  })

  it('still takes a call that adds no field to a profile over the limit (a lowered setting)', () => {
    expect(planMerge(fields(3), plain({ f0: 'changed' }), fieldsUpTo(2))).toMatchObject({ changed: true })
    expect(planMerge(fields(3), plain({ f1: 1 }), fieldsUpTo(2))).toMatchObject({ changed: false })
    rejection(() => planMerge(fields(3), plain({ extra: 1 }), fieldsUpTo(2)), 'conflict')
  })

  it('refuses a merge whose stored form would outgrow profileMaxBytes, naming the limit, unless it shrinks', () => {
    const big = { blob: 'x'.repeat(2000) }
    const limits = { profileMaxFields: 500, profileMaxBytes: 3000 }
    expect(planMerge(big, plain({ more: 'y'.repeat(500) }), limits)).toMatchObject({ changed: true })
    expect(rejection(() => planMerge(big, plain({ more: 'y'.repeat(1500) }), limits), 'conflict').message).toMatch(/PROFILE_MAX_BYTES/)
    expect(planMerge({ blob: 'x'.repeat(4000) }, plain({ blob: 'short' }), limits)).toMatchObject({ changed: true })
  })

  it('does not treat inherited names as stored fields', () => {
    expect(planMerge({}, plain(parse('{"constructor":1}')), fieldsUpTo(500))).toMatchObject({ changed: true })
    expect(planMerge({}, plain({ toString: 'x' }), fieldsUpTo(500))).toMatchObject({ changed: true })
  })
})

describe('top-level field names and white space', () => {
  const limits = defaults

  it.each([' name', 'name ', '\u000b', '\tplan', 'plan\u00a0', 'x\u0085'])('refuses the field name %j, white space at an edge (docs/api.md#white-space-around-field-names)', (name) => {
    expect(() => checkMetadata({ [name]: 1 }, limits)).toThrow(/must not start or end with white space/)
  })

  it('accepts white space inside a field name and at the edges of nested keys', () => {
    expect(checkMetadata({ 'first name': 1, nested: { ' padded ': 2 } }, limits)).toEqual({ 'first name': 1, nested: { ' padded ': 2 } })
  })
})

describe('placeholder detection on hostile input', () => {
  // The former single regular expression backtracked quadratically here (about 100 s for this string);
  // the test's own timeout is the guard, since speed is not asserted by time.
  it('answers at once for a long blank string that ends in a word', () => {
    expect(isPlaceholder(`${' '.repeat(200_000)}x`)).toBe(false)
    expect(isPlaceholder(`${' '.repeat(200_000)}null`)).toBe(true)
  }, 5000)
})
