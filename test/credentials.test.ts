import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  ALL_PERMISSIONS,
  IDENTIFY_WRITE,
  displayPrefix,
  generateSecret,
  grants,
  hasSecretShape,
  hashSecret,
  parseBearer,
  type CredentialKind
} from '../src/domain/credentials.js'

/* Unit tests of the credential rules of docs/api.md#authentication (website keys, account tokens, the checks). */

const prefixOf: Record<CredentialKind, string> = { websiteKey: 'df_', accountToken: 'dft_' }
const kinds: CredentialKind[] = ['websiteKey', 'accountToken']

describe('parseBearer', () => {
  it.each([
    ['no header', undefined],
    ['an empty header', ''],
    ['a blank header', '   '],
    ['another scheme', 'Basic ZGZfYWJj'],
    ['a token without a scheme', 'df_abc'],
    ['the scheme alone', 'Bearer'],
    ['the scheme and white space', 'Bearer   '],
    ['a token with neither prefix', 'Bearer abc'],
    ['a token with an uppercase prefix', 'Bearer DF_abc'],
    ['a token with a prefix lacking its underscore', 'Bearer dfabc'],
    ['a dft token lacking its underscore', 'Bearer dftabc'],
    ['a prefix in the middle', 'Bearer x_df_abc'],
    ['two tokens', 'Bearer df_abc df_def'],
    ['a Bearer-like scheme', 'Bearers df_abc']
  ])('refuses %s', (_case, header) => {
    const parsed = parseBearer(header)
    expect(parsed.ok).toBe(false)
    if (!parsed.ok) expect(parsed.reason).toEqual(expect.any(String))
    if (!parsed.ok) expect(parsed.reason.length).toBeGreaterThan(0)
  })

  it('explains each refusal differently: missing, other scheme, empty token, unknown prefix', () => {
    const reasons = [undefined, 'Basic x', 'Bearer', 'Bearer abc'].map((header) => {
      const parsed = parseBearer(header)
      return parsed.ok ? '' : parsed.reason
    })
    expect(new Set(reasons).size).toBe(4)
    expect(reasons[0]).toMatch(/Authorization/)
    expect(reasons[1]).toMatch(/Bearer/)
    expect(reasons[2]).toMatch(/empty/)
    expect(reasons[3]).toMatch(/df_.*dft_/)
  })

  it.each([
    ['Bearer df_abc', 'websiteKey', 'df_abc'],
    ['Bearer dft_abc', 'accountToken', 'dft_abc'],
    ['bearer df_abc', 'websiteKey', 'df_abc'],
    ['BEARER dft_abc', 'accountToken', 'dft_abc'],
    ['Bearer    df_abc', 'websiteKey', 'df_abc'],
    ['  Bearer df_abc  ', 'websiteKey', 'df_abc'],
    ['Bearer\tdft_abc', 'accountToken', 'dft_abc'],
    ['Bearer df_', 'websiteKey', 'df_'],
    ['Bearer dft_', 'accountToken', 'dft_'],
    ['Bearer df_t_x', 'websiteKey', 'df_t_x']
  ])('reads %j as a %s', (header, kind, secret) => {
    expect(parseBearer(header)).toEqual({ ok: true, credential: { kind, secret } })
  })

  it('returns a generated secret exactly as it was presented', () => {
    for (const kind of kinds) {
      const secret = generateSecret(kind)
      expect(parseBearer(`Bearer ${secret}`)).toEqual({ ok: true, credential: { kind, secret } })
    }
  })
})

describe('generateSecret', () => {
  it.each(kinds)('gives a %s its prefix and 43 base64url characters', (kind) => {
    const secret = generateSecret(kind)
    const prefix = prefixOf[kind]
    expect(secret.startsWith(prefix)).toBe(true)
    expect(secret.slice(prefix.length)).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(hasSecretShape({ kind, secret })).toBe(true)
  })

  it.each(kinds)('gives a %s at least 192 bits of entropy after the prefix', (kind) => {
    const secret = generateSecret(kind)
    const bytes = Buffer.from(secret.slice(prefixOf[kind].length), 'base64url')
    expect(bytes.length * 8).toBeGreaterThanOrEqual(192)
    expect(bytes.length).toBe(32)
    expect(bytes.toString('base64url')).toBe(secret.slice(prefixOf[kind].length))
  })

  it('never repeats itself', () => {
    const secrets = new Set<string>()
    for (let index = 0; index < 2000; index++) secrets.add(generateSecret(index % 2 === 0 ? 'websiteKey' : 'accountToken'))
    expect(secrets.size).toBe(2000)
    const suffixes = new Set([...secrets].map((secret) => secret.replace(/^dft?_/, '')))
    expect(suffixes.size).toBe(2000)
  })

  it('draws its bits evenly: about half of them are set, at every byte position', () => {
    const count = 2000
    const ones = new Array<number>(32).fill(0)
    for (let index = 0; index < count; index++) {
      const bytes = Buffer.from(generateSecret('websiteKey').slice(3), 'base64url')
      bytes.forEach((byte, position) => {
        let bits = 0
        for (let value = byte; value > 0; value >>= 1) bits += value & 1
        ones[position] = (ones[position] ?? 0) + bits
      })
    }
    const total = ones.reduce((sum, value) => sum + value, 0)
    const expected = count * 256 / 2
    // Standard deviation of a fair 512000-bit draw is about 358: 8 of them is a safe margin.
    expect(Math.abs(total - expected)).toBeLessThan(8 * 358)
    for (const value of ones) {
      // Per byte position: 16000 bits, standard deviation about 63.
      expect(Math.abs(value - count * 4)).toBeLessThan(8 * 63)
    }
  })
})

describe('hasSecretShape', () => {
  it.each([
    ['too short', 'df_abc', 'websiteKey'],
    ['one character too long', `df_${'a'.repeat(44)}`, 'websiteKey'],
    ['a character outside base64url', `df_${'a'.repeat(42)}+`, 'websiteKey'],
    ['padding', `dft_${'a'.repeat(42)}=`, 'accountToken'],
    ['only the prefix', 'dft_', 'accountToken']
  ] as const)('refuses a secret that is %s', (_case, secret, kind) => {
    expect(hasSecretShape({ kind, secret })).toBe(false)
  })
})

describe('hashSecret', () => {
  it('is the SHA-256 of the secret as 64 lowercase hex characters', () => {
    expect(hashSecret('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    expect(hashSecret('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
    const secret = generateSecret('accountToken')
    expect(hashSecret(secret)).toBe(createHash('sha256').update(secret, 'utf8').digest('hex'))
    expect(hashSecret(secret)).toMatch(/^[0-9a-f]{64}$/)
  })

  it('is deterministic and tells secrets apart', () => {
    const one = generateSecret('websiteKey')
    const two = generateSecret('websiteKey')
    expect(hashSecret(one)).toBe(hashSecret(one))
    expect(hashSecret(one)).not.toBe(hashSecret(two))
    expect(hashSecret('df_a')).not.toBe(hashSecret('dft_a'))
  })

  it('does not contain the secret', () => {
    const secret = generateSecret('websiteKey')
    expect(hashSecret(secret)).not.toContain(secret.slice(3, 13))
  })
})

describe('displayPrefix', () => {
  it.each(kinds)('shows the %s prefix and 6 more characters', (kind) => {
    const secret = generateSecret(kind)
    const shown = displayPrefix(secret)
    expect(shown).toBe(secret.slice(0, prefixOf[kind].length + 6))
    expect(secret.startsWith(shown)).toBe(true)
  })

  it.each(kinds)('leaves at least 192 bits of a %s unshown', (kind) => {
    const secret = generateSecret(kind)
    const hidden = secret.length - displayPrefix(secret).length
    expect(hidden * 6).toBeGreaterThanOrEqual(192)
  })

  it('tells keys apart in a listing', () => {
    const shown = new Set(Array.from({ length: 200 }, () => displayPrefix(generateSecret('websiteKey'))))
    expect(shown.size).toBeGreaterThan(195)
  })
})

describe('grants', () => {
  it('names the permission this endpoint needs and the one that grants all', () => {
    expect(IDENTIFY_WRITE).toBe('identify:write')
    expect(ALL_PERMISSIONS).toBe('*')
  })

  it.each([
    [['identify:write']],
    [['*']],
    [['identify:read', 'identify:write']],
    [['stats:read', '*']]
  ])('grants identify:write to %j', (permissions) => {
    expect(grants(permissions, IDENTIFY_WRITE)).toBe(true)
  })

  it.each([
    [[]],
    [['identify:read']],
    [['IDENTIFY:WRITE']],
    [['identify:*']],
    [['identify']],
    [[' identify:write']],
    [['identify:write ']],
    [['**']],
    [['identify:writes']]
  ])('does not grant identify:write to %j: permissions are opaque strings', (permissions) => {
    expect(grants(permissions, IDENTIFY_WRITE)).toBe(false)
  })

  it('grants any opaque permission the same way', () => {
    expect(grants(['stats:read'], 'stats:read')).toBe(true)
    expect(grants(['*'], 'anything at all')).toBe(true)
    expect(grants(['stats:read'], 'identify:write')).toBe(false)
  })
})
