import type { BatchItemResult, BatchOutcome } from '../schemas/identify-batch.js'
import { DomainError, invalid } from './errors.js'
import { checkIdentifyBody, type IdentifyInput, type IdentifyRules } from './identify.js'
import type { ProfileLimits } from './metadata.js'

export type { BatchOutcome }

export interface ProfileOutcome {
  profileId: string
  created: boolean
  changed: boolean
}

/** The storage a batch needs: ProfilesRepository.upsertProfiles, one outcome (or the item's conflict) per entry, in order. */
export interface BatchProfileStore {
  upsertProfiles: (websiteId: string, entries: IdentifyInput[], limits: ProfileLimits) => Promise<Array<ProfileOutcome | DomainError>>
}

export interface BatchInput {
  websiteId: string
  cookieless: boolean
  items: unknown[]
}

/** The envelope of a batch call (docs/api.md#batch-identify-body): a 400 for the whole call when broken. */
export function checkBatchEnvelope (body: unknown, maxItems: number): { items: unknown[] } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('The request body must be a JSON object with an items array')
  const { items, ...rest } = body as Record<string, unknown>
  const [extra] = Object.keys(rest)
  if (extra !== undefined) throw invalid(`The request body must hold only items; ${JSON.stringify(extra.slice(0, 40))} is not accepted`)
  if (!Array.isArray(items)) throw invalid('items must be an array of identify bodies')
  if (items.length < 1 || items.length > maxItems) throw invalid(`items holds ${items.length} identify bodies; 1 to ${maxItems} are allowed (BATCH_MAX_ITEMS)`)
  return { items }
}

/** A batch's items after checking: the results of the refused ones, and the valid ones still to store. */
export interface CheckedBatch {
  /** Indexed by item; only refused items have a result yet. */
  results: BatchItemResult[]
  valid: Array<{ index: number, entry: IdentifyInput }>
}

/** Each item as if sent alone, in order, the valid ones stored together in bulk (docs/api.md#batch-identify-semantics). */
export async function identifyBatch (profiles: BatchProfileStore, input: BatchInput, rules: IdentifyRules): Promise<BatchOutcome> {
  return await storeCheckedBatch(profiles, input, checkBatchItems(input.items, rules), rules.limits)
}

/** The first half of identifyBatch, without the database: each item checked as a single identify body. */
export function checkBatchItems (items: unknown[], rules: IdentifyRules): CheckedBatch {
  const results: BatchItemResult[] = []
  const valid: CheckedBatch['valid'] = []
  items.forEach((item, index) => {
    try {
      valid.push({ index, entry: checkIdentifyBody(item, rules) })
    } catch (error) {
      if (!(error instanceof DomainError)) throw error
      results[index] = failure(index, error)
    }
  })
  return { results, valid }
}

/** The second half of identifyBatch: the valid items of checkBatchItems stored together in bulk. */
export async function storeCheckedBatch (
  profiles: BatchProfileStore,
  target: Pick<BatchInput, 'websiteId' | 'cookieless'>,
  { results: refused, valid }: CheckedBatch,
  limits: ProfileLimits
): Promise<BatchOutcome> {
  const results = [...refused]
  const outcomes = target.cookieless
    ? valid.map(() => null)
    : await profiles.upsertProfiles(target.websiteId, valid.map(({ entry }) => entry), limits)
  valid.forEach(({ index }, position) => {
    const outcome = outcomes[position] ?? null
    results[index] = outcome instanceof DomainError ? failure(index, outcome) : success(index, outcome)
  })
  return { results, counts: countOf(results) }
}

function success (index: number, outcome: ProfileOutcome | null): BatchItemResult {
  // Null: a cookieless website, which single identify answers skipped too.
  if (outcome === null) return { index, status: 'success', action: 'skipped', profileId: null }
  const action = outcome.created ? 'created' : outcome.changed ? 'updated' : 'unchanged'
  return { index, status: 'success', action, profileId: outcome.profileId }
}

function failure (index: number, error: DomainError): BatchItemResult {
  return { index, status: 'error', error: { code: error.kind === 'conflict' ? 409 : 400, message: error.message } }
}

function countOf (results: BatchItemResult[]): BatchOutcome['counts'] {
  const counts = { created: 0, updated: 0, unchanged: 0, skipped: 0, failed: 0 }
  for (const result of results) counts[result.status === 'error' ? 'failed' : result.action]++
  return counts
}
