import type { AccountToken, AccountTokenRecord, NewAccountToken, Website, WebsiteChanges, WebsiteKeyRecord } from './accounts.js'
import type { AccessTokenView, ApiKeyView, WebsiteView } from '../schemas/admin.js'
import {
  accessTokenNotFound,
  accountNotFound,
  allowsWebsite,
  apiKeyNotFound,
  checkGrant,
  checkMayCreateWebsite,
  tokenCapReached,
  websiteNotFound,
  type AccessTokenInput,
  type ApiKeyInput,
  type WebsiteInput
} from './account-rules.js'
import { accessTokenView, apiKeyView, websiteView } from './account-views.js'

/** An account token over HTTP, or the command line's operator (token null; any account when accountId is null). */
export interface Actor {
  accountId: string | null
  token: AccountToken | null
}

export const tokenActor = (token: AccountToken): Actor => ({ accountId: token.accountId, token })
export const operatorActor = (accountId: string | null = null): Actor => ({ accountId, token: null })

/** The storage the Account API needs: WebsitesRepository and CredentialsRepository. */
export interface AccountAdminStore {
  websites: {
    accountExists: (accountId: string) => Promise<boolean>
    createWebsite: (input: { accountId: string, domain: string, cookieless: boolean }) => Promise<string>
    findWebsite: (websiteId: string) => Promise<Website | null>
    listWebsites: (accountId: string) => Promise<Website[]>
    updateWebsite: (websiteId: string, changes: WebsiteChanges) => Promise<Website | null>
  }
  credentials: {
    createWebsiteKey: (input: { websiteId: string, name: string }) => Promise<{ id: string, key: string, record: WebsiteKeyRecord }>
    findWebsiteKeyById: (keyId: string) => Promise<WebsiteKeyRecord | null>
    listWebsiteKeys: (websiteId: string) => Promise<WebsiteKeyRecord[]>
    revokeWebsiteKey: (keyId: string) => Promise<boolean>
    createAccountToken: (input: NewAccountToken) => Promise<{ id: string, token: string, record: AccountTokenRecord }>
    findAccountTokenById: (tokenId: string) => Promise<AccountTokenRecord | null>
    listAccountTokens: (accountId: string) => Promise<AccountTokenRecord[]>
    countActiveAccountTokens: (accountId: string, now: Date) => Promise<number>
    deleteAccountToken: (tokenId: string) => Promise<void>
    revokeAccountToken: (tokenId: string) => Promise<boolean>
  }
}

/** The one place that decides who may see and change what; what the actor may not see "does not exist", like an unknown id. */
export class AccountAdmin {
  constructor (private readonly store: AccountAdminStore, private readonly maxTokensPerAccount: number) {}

  async listWebsites (actor: Actor): Promise<WebsiteView[]> {
    const websites = await this.store.websites.listWebsites(accountOf(actor))
    return websites.filter((website) => mayActOn(actor, website)).map(websiteView)
  }

  async createWebsite (actor: Actor, input: WebsiteInput): Promise<WebsiteView> {
    const accountId = accountOf(actor)
    if (actor.token !== null) checkMayCreateWebsite(actor.token)
    await this.requireAccount(accountId)
    const id = await this.store.websites.createWebsite({ accountId, ...input })
    return websiteView(await this.website(actor, id))
  }

  async updateWebsite (actor: Actor, websiteId: string, changes: WebsiteChanges): Promise<WebsiteView> {
    await this.website(actor, websiteId)
    const updated = await this.store.websites.updateWebsite(websiteId, changes)
    if (updated === null) throw websiteNotFound(websiteId)
    return websiteView(updated)
  }

  async listApiKeys (actor: Actor, websiteId: string): Promise<ApiKeyView[]> {
    await this.website(actor, websiteId)
    return (await this.store.credentials.listWebsiteKeys(websiteId)).map(apiKeyView)
  }

  async createApiKey (actor: Actor, websiteId: string, input: ApiKeyInput): Promise<{ apiKey: ApiKeyView, key: string }> {
    await this.website(actor, websiteId)
    const { key, record } = await this.store.credentials.createWebsiteKey({ websiteId, name: input.name })
    return { apiKey: apiKeyView(record), key }
  }

  async revokeApiKey (actor: Actor, keyId: string): Promise<ApiKeyView> {
    const key = await this.store.credentials.findWebsiteKeyById(keyId)
    const website = key === null ? null : await this.store.websites.findWebsite(key.websiteId)
    if (website === null || !mayActOn(actor, website)) throw apiKeyNotFound(keyId)
    await this.store.credentials.revokeWebsiteKey(keyId)
    const revoked = await this.store.credentials.findWebsiteKeyById(keyId)
    if (revoked === null) throw apiKeyNotFound(keyId)
    return apiKeyView(revoked)
  }

  async listAccessTokens (actor: Actor): Promise<AccessTokenView[]> {
    const tokens = await this.store.credentials.listAccountTokens(accountOf(actor))
    return tokens.filter((token) => maySee(actor, token)).map(accessTokenView)
  }

  /** Cap checked after the insert, so racing creates never pass it (docs/api.md#account-api-token-cap). */
  async createAccessToken (actor: Actor, input: AccessTokenInput): Promise<{ accessToken: AccessTokenView, token: string }> {
    const accountId = accountOf(actor)
    if (actor.token !== null) checkGrant(actor.token, input)
    await this.requireAccount(accountId)
    for (const websiteId of input.websiteIds) await this.website(actor, websiteId)
    const { credentials } = this.store
    const created = await credentials.createAccountToken({ accountId, ...input })
    if (await credentials.countActiveAccountTokens(accountId, new Date()) > this.maxTokensPerAccount) {
      await credentials.deleteAccountToken(created.id)
      throw tokenCapReached(this.maxTokensPerAccount)
    }
    return { accessToken: accessTokenView(created.record), token: created.token }
  }

  async revokeAccessToken (actor: Actor, tokenId: string): Promise<AccessTokenView> {
    const token = await this.store.credentials.findAccountTokenById(tokenId)
    if (token === null || !maySee(actor, token)) throw accessTokenNotFound(tokenId)
    await this.store.credentials.revokeAccountToken(tokenId)
    const revoked = await this.store.credentials.findAccountTokenById(tokenId)
    if (revoked === null) throw accessTokenNotFound(tokenId)
    return accessTokenView(revoked)
  }

  private async website (actor: Actor, websiteId: string): Promise<Website> {
    const website = await this.store.websites.findWebsite(websiteId)
    if (website === null || !mayActOn(actor, website)) throw websiteNotFound(websiteId)
    return website
  }

  private async requireAccount (accountId: string): Promise<void> {
    if (!await this.store.websites.accountExists(accountId)) throw accountNotFound(accountId)
  }
}

/** The account of an account-wide action; only the operator's id-addressed actions have none. */
function accountOf (actor: Actor): string {
  if (actor.accountId === null) throw new Error('An account-wide action needs an account')
  return actor.accountId
}

function mayActOn (actor: Actor, website: Website): boolean {
  if (actor.accountId !== null && website.accountId !== actor.accountId) return false
  return actor.token === null || allowsWebsite(actor.token, website.id)
}

/** A token limited to some websites sees only tokens limited to some of those; an unlimited one sees its whole account. */
function maySee (actor: Actor, token: AccountTokenRecord): boolean {
  if (actor.accountId !== null && token.accountId !== actor.accountId) return false
  const limits = actor.token?.websiteIds ?? []
  if (limits.length === 0) return true
  return token.websiteIds.length > 0 && token.websiteIds.every((id) => limits.includes(id))
}
