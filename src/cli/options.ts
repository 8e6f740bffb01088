import { InvalidArgumentError } from 'commander'
import { checkDomain, checkExpiresAt, checkName, checkWebsiteIds } from '../domain/account-rules.js'
import { checkPermissions } from '../domain/credentials.js'
import { DomainError } from '../domain/errors.js'
import { canonicalObjectId } from '../domain/ids.js'
import { checkPageLimit, PAGE_LIMIT_MAX } from '../domain/profiles.js'

export const parseId = (value: string): string => {
  const id = canonicalObjectId(value)
  if (id === null) throw new InvalidArgumentError('Expected an id of 24 hex characters.')
  return id
}

export const parseLimit = (value: string): number => {
  try {
    return checkPageLimit(value)
  } catch (error) {
    if (error instanceof DomainError) throw new InvalidArgumentError(`Expected a whole number from 1 to ${PAGE_LIMIT_MAX}.`)
    throw error
  }
}

export const parseText = (value: string): string => {
  if (value.trim() === '') throw new InvalidArgumentError('Expected a non-empty value.')
  return value.trim()
}

export const parseLineCount = (value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('Expected a whole number of at least 1.')
  return Number(value)
}

const parseList = (value: string): string[] => {
  const items = value.split(',').map((item) => item.trim())
  if (items.includes('')) throw new InvalidArgumentError('Expected a comma-separated list of non-empty values.')
  return [...new Set(items)]
}

/** One of the Account API's rules as an option parser: the command line refuses what the API refuses, with the API's message. */
const byRule = <T>(check: (value: string) => T) => (value: string): T => {
  try {
    return check(value)
  } catch (error) {
    if (error instanceof DomainError) throw new InvalidArgumentError(`${error.message}.`)
    throw error
  }
}

export const parsePermissions = byRule((value) => checkPermissions(parseList(value)))
export const parseWebsiteIds = byRule((value) => checkWebsiteIds(parseList(value)))
export const parseDomain = byRule(checkDomain)
export const parseName = byRule(checkName)
export const parseExpiresAt = byRule((value) => checkExpiresAt(value))
