import { ObjectId, type Db } from 'mongodb'

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

export interface Website {
  id: string
  accountId: string
  domain: string
  cookieless: boolean
  suspended: boolean
}

/** Accounts and their websites: who owns a website, and how it tracks. */
export class WebsitesRepository {
  private readonly accounts
  private readonly websites

  constructor (db: Db) {
    this.accounts = db.collection<AccountDocument>('accounts')
    this.websites = db.collection<WebsiteDocument>('websites')
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

  async findWebsite (websiteId: string): Promise<Website | null> {
    const document = await this.websites.findOne({ _id: new ObjectId(websiteId) })
    if (document === null) return null
    return {
      id: document._id.toHexString(),
      accountId: document.accountId.toHexString(),
      domain: document.domain,
      cookieless: document.cookieless,
      suspended: document.suspended
    }
  }
}
