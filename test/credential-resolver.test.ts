import { afterAll, describe, expect, it, vi } from 'vitest'
import { CredentialResolver, type CredentialSources } from '../src/domain/credential-resolver.js'
import { IDENTIFY_WRITE, PROFILE_READ_PERMISSIONS } from '../src/domain/credentials.js'
import { DomainError, type DomainErrorKind } from '../src/domain/errors.js'
import { buildTestApp, createTestToken, createTestWebsite } from './helper.js'

/*
 * The credential resolver alone, without HTTP, on the real repositories:
 * docs/api.md#authentication.
 */

const app = await buildTestApp()
afterAll(async () => { await app.close() })
const { credentials, websites } = app.repositories

/** The repositories, counting the reads that reach them. */
function countingSources (): CredentialSources & { reads: number } {
  const sources = {
    reads: 0,
    findWebsiteKey: async (hash: string) => { sources.reads++; return await credentials.findWebsiteKey(hash) },
    findAccountToken: async (hash: string) => { sources.reads++; return await credentials.findAccountToken(hash) },
    findWebsite: async (id: string) => { sources.reads++; return await websites.findWebsite(id) }
  }
  return sources
}

const write = { permissions: [IDENTIFY_WRITE], allowSuspended: false }
const read = { permissions: PROFILE_READ_PERMISSIONS, allowSuspended: true }
const bearer = (secret: string) => `Bearer ${secret}`

async function refusal (promise: Promise<unknown>, kind: DomainErrorKind): Promise<string> {
  const error = await promise.then(() => null, (caught: unknown) => caught)
  expect(error).toBeInstanceOf(DomainError)
  expect((error as DomainError).kind).toBe(kind)
  return (error as DomainError).message
}

describe('CredentialResolver', () => {
  it('resolves a website key to its website, and refuses another websiteId', async () => {
    const site = await createTestWebsite(app)
    const other = await createTestWebsite(app)
    const resolver = new CredentialResolver(countingSources(), 0)
    const caller = await resolver.resolveWebsiteCaller(bearer(site.key), undefined, write)
    expect(caller).toMatchObject({ website: { id: site.websiteId }, credential: { kind: 'websiteKey', id: site.keyId } })
    expect(await refusal(resolver.resolveWebsiteCaller(bearer(site.key), other.websiteId, write), 'forbidden')).toMatch(/another website/)
  })

  it('asks a token for one of the route\'s permissions, its websiteId and its allow-list', async () => {
    const site = await createTestWebsite(app)
    const other = await createTestWebsite(app, { accountId: site.accountId })
    const reader = await createTestToken(app, { accountId: site.accountId, permissions: ['analytics:read'], websiteIds: [site.websiteId] })
    const resolver = new CredentialResolver(countingSources(), 0)
    expect(await resolver.resolveWebsiteCaller(bearer(reader.token), site.websiteId, read)).toMatchObject({ website: { id: site.websiteId } })
    expect(await refusal(resolver.resolveWebsiteCaller(bearer(reader.token), site.websiteId, write), 'forbidden')).toMatch(/identify:write/)
    expect(await refusal(resolver.resolveWebsiteCaller(bearer(reader.token), undefined, read), 'invalid')).toMatch(/websiteId is required/)
    await refusal(resolver.resolveWebsiteCaller(bearer(reader.token), other.websiteId, read), 'forbidden')
  })

  it('answers a suspended website only where the access allows it', async () => {
    const site = await createTestWebsite(app)
    await websites.setSuspended(site.websiteId, true)
    const resolver = new CredentialResolver(countingSources(), 0)
    expect(await refusal(resolver.resolveWebsiteCaller(bearer(site.key), undefined, write), 'forbidden')).toMatch(/suspended/)
    expect((await resolver.resolveWebsiteCaller(bearer(site.key), undefined, read)).website.suspended).toBe(true)
  })

  it('takes only dft_ tokens on account routes', async () => {
    const site = await createTestWebsite(app)
    const owner = await createTestToken(app, { accountId: site.accountId, permissions: ['*'] })
    const resolver = new CredentialResolver(countingSources(), 0)
    expect(await resolver.resolveAccountCaller(bearer(owner.token), 'websites:read')).toMatchObject({ accountId: site.accountId })
    expect(await refusal(resolver.resolveAccountCaller(bearer(site.key), 'websites:read'), 'forbidden')).toMatch(/dft_/)
    await refusal(resolver.resolveAccountCaller('Bearer dft_unknown', 'websites:read'), 'unauthenticated')
  })

  it('serves a cached key without the database until it forgets it', async () => {
    const site = await createTestWebsite(app)
    const sources = countingSources()
    const resolver = new CredentialResolver(sources, 60_000)
    await resolver.resolveWebsiteCaller(bearer(site.key), undefined, write)
    const reads = sources.reads
    await resolver.resolveWebsiteCaller(bearer(site.key), undefined, write)
    expect(sources.reads).toBe(reads)
    expect(resolver.isKnown(bearer(site.key))).toBe(true)

    await credentials.revokeWebsiteKey(site.keyId)
    // Cached: the revocation is not seen until the entry is forgotten (or expires).
    await resolver.resolveWebsiteCaller(bearer(site.key), undefined, write)
    resolver.forget({ kind: 'websiteKey', id: site.keyId })
    expect(resolver.isKnown(bearer(site.key))).toBe(false)
    await refusal(resolver.resolveWebsiteCaller(bearer(site.key), undefined, write), 'unauthenticated')
  })

  it('answers a cached credential synchronously, by the same rules, and leaves any other to the reads', async () => {
    const site = await createTestWebsite(app)
    const other = await createTestWebsite(app)
    const reader = await createTestToken(app, { accountId: site.accountId, permissions: ['analytics:read'] })
    const sources = countingSources()
    const resolver = new CredentialResolver(sources, 60_000)
    expect(resolver.cachedWebsiteCaller(bearer(site.key), undefined, write)).toBeNull()
    expect(sources.reads).toBe(0)

    await resolver.resolveWebsiteCaller(bearer(site.key), undefined, write)
    await resolver.resolveWebsiteCaller(bearer(reader.token), site.websiteId, read)
    const reads = sources.reads
    expect(resolver.cachedWebsiteCaller(bearer(site.key), undefined, write)).toMatchObject({ website: { id: site.websiteId }, credential: { id: site.keyId } })
    expect(() => resolver.cachedWebsiteCaller(bearer(site.key), other.websiteId, write)).toThrow(/another website/)
    expect(() => resolver.cachedWebsiteCaller(bearer(reader.token), site.websiteId, write)).toThrow(/identify:write/)
    // The token is cached, the other website is not: its read is left to resolveWebsiteCaller.
    expect(resolver.cachedWebsiteCaller(bearer(reader.token), other.websiteId, read)).toBeNull()
    expect(sources.reads).toBe(reads)
  })

  it('does not cache a key read while a change arrived: the read may predate the revocation it announces', async () => {
    const site = await createTestWebsite(app)
    const sources = countingSources()
    let readDone = (): void => {}
    const held = new Promise<void>((resolve) => { readDone = resolve })
    const resolver = new CredentialResolver({
      ...sources,
      // The read happens at once (before the revocation); its answer arrives after the change was heard.
      findWebsiteKey: async (hash) => { const key = await sources.findWebsiteKey(hash); await held; return key }
    }, 60_000)
    const inFlight = resolver.resolveWebsiteCaller(bearer(site.key), undefined, write)
    await vi.waitFor(() => { expect(sources.reads).toBe(1) })
    await credentials.revokeWebsiteKey(site.keyId)
    resolver.forgetAll()
    readDone()
    // That call was decided on what it read, but the next one reads again and sees the revocation.
    await inFlight
    expect(resolver.isKnown(bearer(site.key))).toBe(false)
    await refusal(resolver.resolveWebsiteCaller(bearer(site.key), undefined, write), 'unauthenticated')
  })

  it('forgets a suspended website at once', async () => {
    const site = await createTestWebsite(app)
    const resolver = new CredentialResolver(countingSources(), 60_000)
    await resolver.resolveWebsiteCaller(bearer(site.key), undefined, write)
    await websites.setSuspended(site.websiteId, true)
    resolver.forget({ kind: 'website', id: site.websiteId })
    await refusal(resolver.resolveWebsiteCaller(bearer(site.key), undefined, write), 'forbidden')
  })
})
