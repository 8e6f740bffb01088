import { ObjectId, type Collection, type Db } from 'mongodb'
import { displayPrefix, generateSecret, hashSecret, type CredentialKind } from '../../domain/credentials.js'
import type { AccountToken, AccountTokenRecord, NewAccountToken, WebsiteKey, WebsiteKeyRecord } from '../../domain/accounts.js'
import { findById, listByOwner } from './mapped-reads.js'

const WEBSITE_KEYS = 'websiteKeys'
const ACCOUNT_TOKENS = 'accountTokens'

/** What key and token records share, for revocation. */
interface Revocable {
  _id: ObjectId
  revokedAt: Date | null
}

interface WebsiteKeyDocument {
  _id: ObjectId
  hash: string
  prefix: string
  websiteId: ObjectId
  name: string
  createdAt: Date
  revokedAt: Date | null
}

interface AccountTokenDocument {
  _id: ObjectId
  hash: string
  prefix: string
  accountId: ObjectId
  permissions: string[]
  /** Empty means every website of the account. */
  websiteIds: ObjectId[]
  name: string
  createdAt: Date
  expiresAt: Date | null
  revokedAt: Date | null
}

/** Only a secret's SHA-256 hash (unique index) and a display prefix are stored (docs/security.md#where-credentials-live-and-how-they-are-compared). */
export class CredentialsRepository {
  private readonly websiteKeys
  private readonly accountTokens

  constructor (private readonly db: Db) {
    this.websiteKeys = db.collection<WebsiteKeyDocument>(WEBSITE_KEYS)
    this.accountTokens = db.collection<AccountTokenDocument>(ACCOUNT_TOKENS)
  }

  async ensureIndexes (): Promise<void> {
    await this.websiteKeys.createIndex({ hash: 1 }, { name: 'hash', unique: true }, undefined)
    await this.accountTokens.createIndex({ hash: 1 }, { name: 'hash', unique: true }, undefined)
    await this.websiteKeys.createIndex({ websiteId: 1 }, { name: 'websiteId' }, undefined)
    await this.accountTokens.createIndex({ accountId: 1 }, { name: 'accountId' }, undefined)
  }

  /** Returns the new key's id and the raw `df_` key, which is never stored. */
  async createWebsiteKey (input: { websiteId: string, name: string }): Promise<{ id: string, key: string, record: WebsiteKeyRecord }> {
    const { secret: key, stored } = newSecret('websiteKey')
    const document: WebsiteKeyDocument = { ...stored, websiteId: new ObjectId(input.websiteId), name: input.name, createdAt: new Date(), revokedAt: null }
    await this.websiteKeys.insertOne(document)
    return { id: document._id.toHexString(), key, record: toWebsiteKeyRecord(document) }
  }

  /** Returns the new token's id and the raw `dft_` token, which is never stored. */
  async createAccountToken (input: NewAccountToken): Promise<{ id: string, token: string, record: AccountTokenRecord }> {
    const { secret: token, stored } = newSecret('accountToken')
    const document: AccountTokenDocument = {
      ...stored,
      accountId: new ObjectId(input.accountId),
      permissions: input.permissions,
      websiteIds: input.websiteIds.map((id) => new ObjectId(id)),
      name: input.name,
      createdAt: new Date(),
      expiresAt: input.expiresAt,
      revokedAt: null
    }
    await this.accountTokens.insertOne(document)
    return { id: document._id.toHexString(), token, record: toAccountTokenRecord(document) }
  }

  async findWebsiteKey (hash: string): Promise<WebsiteKey | null> {
    const document = await this.websiteKeys.findOne({ hash })
    if (document === null) return null
    return { id: document._id.toHexString(), websiteId: document.websiteId.toHexString(), revoked: document.revokedAt !== null }
  }

  async findAccountToken (hash: string): Promise<AccountToken | null> {
    const document = await this.accountTokens.findOne({ hash })
    if (document === null) return null
    return {
      id: document._id.toHexString(),
      accountId: document.accountId.toHexString(),
      permissions: document.permissions,
      websiteIds: document.websiteIds.map((id) => id.toHexString()),
      expiresAt: document.expiresAt,
      revoked: document.revokedAt !== null
    }
  }

  async findWebsiteKeyById (keyId: string): Promise<WebsiteKeyRecord | null> {
    return await findById(this.websiteKeys, keyId, toWebsiteKeyRecord)
  }

  /** The keys of a website, revoked ones included, oldest first. */
  async listWebsiteKeys (websiteId: string): Promise<WebsiteKeyRecord[]> {
    return await listByOwner(this.websiteKeys, 'websiteId', websiteId, toWebsiteKeyRecord)
  }

  async findAccountTokenById (tokenId: string): Promise<AccountTokenRecord | null> {
    return await findById(this.accountTokens, tokenId, toAccountTokenRecord)
  }

  /** The tokens of an account, revoked and expired ones included, oldest first. */
  async listAccountTokens (accountId: string): Promise<AccountTokenRecord[]> {
    return await listByOwner(this.accountTokens, 'accountId', accountId, toAccountTokenRecord)
  }

  async countActiveAccountTokens (accountId: string, now: Date): Promise<number> {
    return await this.accountTokens.countDocuments({
      accountId: new ObjectId(accountId),
      revokedAt: null,
      $or: [{ expiresAt: null }, { expiresAt: { $gt: now } }]
    })
  }

  /** Takes back a token whose secret was never handed out (see AccountAdmin.createAccessToken). */
  async deleteAccountToken (tokenId: string): Promise<void> {
    await this.accountTokens.deleteOne({ _id: new ObjectId(tokenId) })
  }

  /** Returns false when no key has that id. Revoking twice keeps the first time. */
  async revokeWebsiteKey (keyId: string): Promise<boolean> {
    return await revoke(this.db.collection<Revocable>(WEBSITE_KEYS), keyId)
  }

  /** Returns false when no token has that id. Revoking twice keeps the first time. */
  async revokeAccountToken (tokenId: string): Promise<boolean> {
    return await revoke(this.db.collection<Revocable>(ACCOUNT_TOKENS), tokenId)
  }
}

/** A new secret, and what is stored of it: never the secret itself, only its hash and its display prefix. */
function newSecret (kind: CredentialKind) {
  const secret = generateSecret(kind)
  return { secret, stored: { _id: new ObjectId(), hash: hashSecret(secret), prefix: displayPrefix(secret) } }
}

/** What every credential record shows of its document. */
function recordOf (document: WebsiteKeyDocument | AccountTokenDocument) {
  return { id: document._id.toHexString(), name: document.name, displayPrefix: document.prefix, createdAt: document.createdAt, revokedAt: document.revokedAt }
}

function toWebsiteKeyRecord (document: WebsiteKeyDocument): WebsiteKeyRecord {
  return { ...recordOf(document), websiteId: document.websiteId.toHexString() }
}

function toAccountTokenRecord (document: AccountTokenDocument): AccountTokenRecord {
  return {
    ...recordOf(document),
    accountId: document.accountId.toHexString(),
    permissions: document.permissions,
    websiteIds: document.websiteIds.map((id) => id.toHexString()),
    expiresAt: document.expiresAt
  }
}

async function revoke (collection: Collection<Revocable>, id: string): Promise<boolean> {
  const _id = new ObjectId(id)
  const { matchedCount } = await collection.updateOne({ _id, revokedAt: null }, { $set: { revokedAt: new Date() } })
  return matchedCount === 1 || (await collection.countDocuments({ _id }, { limit: 1 })) === 1
}
