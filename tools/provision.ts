import type { Repositories } from '../src/storage/repositories/index.js'

export interface ProvisionedWebsite {
  accountId: string
  websiteId: string
  keyId: string
  /** The raw df_ key, shown only here. */
  key: string
}

export interface ProvisionOptions {
  /** An existing account to add the website to; a new one named accountName otherwise. */
  accountId?: string
  accountName?: string
  domain?: string
  cookieless?: boolean
  keyName?: string
}

/**
 * An account, a website and a website key, made through the repositories as
 * the CLI makes them: the one way the dev server, fuzzing, benchmarks and
 * tests get a website to call.
 */
export async function provisionWebsite ({ websites, credentials }: Repositories, options: ProvisionOptions = {}): Promise<ProvisionedWebsite> {
  const accountId = options.accountId ?? await websites.createAccount(options.accountName ?? 'Test account')
  const websiteId = await websites.createWebsite({ accountId, domain: options.domain ?? 'example.com', cookieless: options.cookieless ?? false })
  const { id: keyId, key } = await credentials.createWebsiteKey({ websiteId, name: options.keyName ?? 'test' })
  return { accountId, websiteId, keyId, key }
}
