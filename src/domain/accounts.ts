/** The accounts' entities as the domain and every layer see them; storage maps its documents to them. */

export interface Website {
  id: string
  accountId: string
  domain: string
  cookieless: boolean
  suspended: boolean
  createdAt: Date
}

export interface WebsiteChanges {
  domain?: string
  cookieless?: boolean
  suspended?: boolean
}

export interface WebsiteKey {
  id: string
  websiteId: string
  revoked: boolean
}

/** A website key as a listing shows it: everything but the hash. */
export interface WebsiteKeyRecord {
  id: string
  websiteId: string
  name: string
  displayPrefix: string
  createdAt: Date
  revokedAt: Date | null
}

export interface AccountToken {
  id: string
  accountId: string
  permissions: string[]
  websiteIds: string[]
  expiresAt: Date | null
  revoked: boolean
}

/** An account token as a listing shows it: everything but the hash. */
export interface AccountTokenRecord {
  id: string
  accountId: string
  name: string
  permissions: string[]
  websiteIds: string[]
  displayPrefix: string
  createdAt: Date
  expiresAt: Date | null
  revokedAt: Date | null
}

/** What a new account token is made of. */
export interface NewAccountToken {
  accountId: string
  permissions: string[]
  websiteIds: string[]
  name: string
  expiresAt: Date | null
}
