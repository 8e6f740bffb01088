import type { AccountTokenRecord, Website, WebsiteKeyRecord } from './accounts.js'
import type { AccessTokenView, ApiKeyView, WebsiteView } from '../schemas/admin.js'

// What the Account API and the command line's --json show: never a secret or a hash (docs/api.md#account-api-shapes).

const isoOrNull = (date: Date | null): string | null => date === null ? null : date.toISOString()

export function websiteView (website: Website): WebsiteView {
  return {
    id: website.id,
    domain: website.domain,
    cookieless: website.cookieless,
    suspended: website.suspended,
    createdAt: website.createdAt.toISOString()
  }
}

export function apiKeyView (key: WebsiteKeyRecord): ApiKeyView {
  return {
    id: key.id,
    websiteId: key.websiteId,
    name: key.name,
    displayPrefix: key.displayPrefix,
    createdAt: key.createdAt.toISOString(),
    revokedAt: isoOrNull(key.revokedAt)
  }
}

export function accessTokenView (token: AccountTokenRecord): AccessTokenView {
  return {
    id: token.id,
    name: token.name,
    permissions: token.permissions,
    websiteIds: token.websiteIds,
    displayPrefix: token.displayPrefix,
    createdAt: token.createdAt.toISOString(),
    expiresAt: isoOrNull(token.expiresAt),
    revokedAt: isoOrNull(token.revokedAt)
  }
}
