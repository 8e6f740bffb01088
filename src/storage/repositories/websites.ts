import { ObjectId, type Db } from 'mongodb'
import type { Website, WebsiteChanges } from '../../domain/accounts.js'
import { findById, listByOwner } from './mapped-reads.js'

interface AccountDocument {
  _id: ObjectId
  name: string
  createdAt: Date
}

interface WebsiteDocument {
  _id: ObjectId
  accountId: ObjectId
  domain: string
  cookieless: boolean
  suspended: boolean
  createdAt: Date
}

/** Accounts and their websites: who owns a website, and how it tracks. */
export class WebsitesRepository {
  private readonly accounts
  private readonly websites

  constructor (db: Db) {
    this.accounts = db.collection<AccountDocument>('accounts')
    this.websites = db.collection<WebsiteDocument>('websites')
  }

  async ensureIndexes (): Promise<void> {
    await this.websites.createIndex({ accountId: 1 }, { name: 'accountId' }, undefined)
  }

  async createAccount (name: string): Promise<string> {
    const { insertedId } = await this.accounts.insertOne({ _id: new ObjectId(), name, createdAt: new Date() })
    return insertedId.toHexString()
  }

  async accountExists (accountId: string): Promise<boolean> {
    return (await this.accounts.findOne({ _id: new ObjectId(accountId) })) !== null
  }

  async createWebsite (input: { accountId: string, domain: string, cookieless: boolean }): Promise<string> {
    const { insertedId } = await this.websites.insertOne({
      _id: new ObjectId(),
      accountId: new ObjectId(input.accountId),
      domain: input.domain,
      cookieless: input.cookieless,
      suspended: false,
      createdAt: new Date()
    })
    return insertedId.toHexString()
  }

  /** Returns false when no website has that id. */
  async setSuspended (websiteId: string, suspended: boolean): Promise<boolean> {
    const { matchedCount } = await this.websites.updateOne({ _id: new ObjectId(websiteId) }, { $set: { suspended } })
    return matchedCount === 1
  }

  /** Returns the website as changed, or null when no website has that id. */
  async updateWebsite (websiteId: string, changes: WebsiteChanges): Promise<Website | null> {
    // An undefined value would be stored as null: set only what was given.
    const set = Object.fromEntries(Object.entries(changes).filter(([, value]) => value !== undefined))
    const { matchedCount } = await this.websites.updateOne({ _id: new ObjectId(websiteId) }, { $set: set })
    return matchedCount === 1 ? await this.findWebsite(websiteId) : null
  }

  async findWebsite (websiteId: string): Promise<Website | null> {
    return await findById(this.websites, websiteId, toWebsite)
  }

  /** The websites of an account, oldest first. */
  async listWebsites (accountId: string): Promise<Website[]> {
    return await listByOwner(this.websites, 'accountId', accountId, toWebsite)
  }
}

function toWebsite (document: WebsiteDocument): Website {
  return {
    id: document._id.toHexString(),
    accountId: document.accountId.toHexString(),
    domain: document.domain,
    cookieless: document.cookieless,
    suspended: document.suspended,
    createdAt: document.createdAt
  }
}
