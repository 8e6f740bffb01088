import { createHash } from 'node:crypto'
import type { Metadata } from '../../src/domain/metadata.js'

/**
 * The bench's users and request bodies. Everything is derived from a
 * counter, so the seeding script, the load generator, the ceiling and the
 * db-floor all address the same users and visitors without sharing state.
 */

export const SCENARIOS = ['create', 'update', 'unchanged', 'new-device', 'token', 'read'] as const
/** http-ceiling-traced is the ceiling with tracing on, exporting every span over OTLP (docs/operations.md#tracing). */
export const REFERENCES = ['db-floor', 'merge-floor', 'read-floor', 'http-ceiling', 'http-ceiling-context', 'http-ceiling-traced'] as const
/** Batch identify of known users (update traffic), and its floor: the same updates from the driver alone, in bulk. */
export const BATCH_RUNS = ['batch-100', 'batch-1000', 'bulk-floor'] as const
export type ScenarioName = typeof SCENARIOS[number]
type ReferenceName = typeof REFERENCES[number]
export type BatchRunName = typeof BATCH_RUNS[number]
export type BatchScenarioName = Exclude<BatchRunName, 'bulk-floor'>
export type RunName = ScenarioName | ReferenceName | BatchRunName

/** Items per call of a batch run; the floor updates as many profiles per round as the larger batch. */
export const BATCH_SIZE: Record<BatchRunName, number> = { 'batch-100': 100, 'batch-1000': 1000, 'bulk-floor': 1000 }

export const isBatchRun = (name: string): name is BatchRunName => name in BATCH_SIZE

/** What the driver-only floors send (docs/benchmarks.md#what-each-row-measures), run by db-floor.ts. */
export const FLOOR_KINDS = { 'db-floor': 'write', 'merge-floor': 'merge', 'read-floor': 'read', 'bulk-floor': 'bulk' } as const
type FloorName = keyof typeof FLOOR_KINDS
export type FloorKind = typeof FLOOR_KINDS[FloorName]
export const isFloor = (name: string): name is FloorName => name in FLOOR_KINDS

/** The action each run's calls should answer; anything else is reported. */
export const expectedAction: Record<RunName, string | null> = {
  create: 'created',
  update: 'updated',
  unchanged: 'unchanged',
  'new-device': 'updated',
  token: 'updated',
  // A read has no action: its answers are counted as `profile`.
  read: 'profile',
  'db-floor': null,
  'merge-floor': null,
  'read-floor': null,
  'http-ceiling': 'updated',
  'http-ceiling-context': 'updated',
  'http-ceiling-traced': 'updated',
  'batch-100': 'updated',
  'batch-1000': 'updated',
  'bulk-floor': null
}

/** How the seeded users are split up, so that scenarios never disturb each other's users. */
export interface Layout {
  websiteId: string
  profiles: number
  /** Every poolStep-th user, poolSize of them, is only ever sent its exact seeded body (the `unchanged` pool). */
  poolSize: number
  poolStep: number
  /** Walks the users in a scattered order, each once per lap. */
  stride: number
}

export function layoutFor (websiteId: string, profiles: number): Layout {
  const poolSize = Math.min(1000, Math.floor(profiles / 10))
  // Spread over the whole collection, like every walk: where a document sits must not favour one scenario.
  const poolStep = Math.floor(profiles / poolSize)
  // A large step coprime with the count visits every user once per lap, scattered over the collection.
  let stride = 48_271 % profiles
  while (gcd(stride, profiles) !== 1) stride++
  return { websiteId, profiles, poolSize, poolStep, stride }
}

function gcd (a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b)
}

/** A version-4-shaped UUID derived from a label, as random-looking as the SDK's. */
function uuidFrom (label: string): string {
  const hex = createHash('sha256').update(label).digest('hex')
  const variant = ((parseInt(hex.charAt(16), 16) & 0x3) | 0x8).toString(16)
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}

export const seedUserId = (n: number): string => `seed-user-${n}`
export const seedVisitorId = (n: number): string => uuidFrom(`seed-visitor-${n}`)

const plans = ['free', 'starter', 'pro', 'business']

/** 6 to 8 fields of mixed types: strings, numbers, booleans, a nested object, an array. */
export function seedMetadata (n: number): Metadata {
  const metadata: Metadata = {
    name: `User ${n}`,
    email: `user${n}@example.com`,
    plan: plans[n % plans.length],
    seats: 1 + (n % 50),
    active: n % 3 !== 0,
    visits: 0
  }
  if (n % 4 !== 0) metadata.company = { name: `Company ${n % 997}`, size: 10 * (1 + (n % 20)), verified: n % 2 === 0 }
  if (n % 5 !== 0) metadata.tags = ['beta', `cohort-${n % 12}`, ...(n % 2 === 0 ? ['newsletter'] : [])]
  return metadata
}

export interface IdentifyRequest {
  user_id: string
  datafast_visitor_id: string
  [field: string]: unknown
}

const poolUser = (layout: Layout, k: number): number => (k % layout.poolSize) * layout.poolStep

/** The seeded user at a position of a scenario's walk, never one of the pool; `start` (0 to 1) keeps scenarios apart. */
function knownUser (layout: Layout, i: number, start: number): number {
  const position = (Math.floor(start * layout.profiles) + i) % layout.profiles
  const n = (position * layout.stride) % layout.profiles
  const inPool = n % layout.poolStep === 0 && n / layout.poolStep < layout.poolSize
  // The next user is never in the pool too (poolStep is at least 10).
  return inPool ? (n + 1) % layout.profiles : n
}

/** Each writer adds its own offset to the changed field, so that no call ever repeats a stored value. */
const visitsBase = { update: 1e9, token: 2e9, 'db-floor': 3e9, 'batch-100': 4e9, 'batch-1000': 5e9, 'bulk-floor': 6e9, 'merge-floor': 7e9 } as const

function seedBody (n: number): IdentifyRequest {
  return { user_id: seedUserId(n), datafast_visitor_id: seedVisitorId(n), ...seedMetadata(n) }
}

/** A known user with its linked visitor and one changed field (`visits`). */
export function updateBody (layout: Layout, i: number, writer: keyof typeof visitsBase): IdentifyRequest {
  const start = { update: 0, token: 0.5, 'db-floor': 0.75, 'batch-100': 0.1, 'batch-1000': 0.3, 'bulk-floor': 0.4, 'merge-floor': 0.65 }[writer]
  const n = knownUser(layout, i, start)
  return { ...seedBody(n), visits: visitsBase[writer] + i + 1 }
}

/** The items of call `i` of a batch run: the next BATCH_SIZE update bodies of its own walk. */
export function batchItems (run: BatchRunName, layout: Layout, i: number): IdentifyRequest[] {
  const size = BATCH_SIZE[run]
  return Array.from({ length: size }, (_, j) => updateBody(layout, i * size + j, run))
}

/** The seeded user whose profile call `i` of `read` (and of read-floor) reads, spread over the collection. */
export const readUser = (layout: Layout, i: number): string => seedUserId(knownUser(layout, i, 0.6))

/** The path of call `i` of `read`: GET a seeded profile by user_id. */
export const readPath = (layout: Layout, i: number): string => `/api/v1/profiles?user_id=${encodeURIComponent(readUser(layout, i))}`

/** The body of call `i` of an identify scenario. */
export function scenarioBody (scenario: Exclude<ScenarioName, 'read'>, layout: Layout, i: number): IdentifyRequest {
  switch (scenario) {
    case 'create':
      return { user_id: `bench-new-${i}`, datafast_visitor_id: uuidFrom(`create-visitor-${i}`), ...seedMetadata(layout.profiles + i) }
    case 'update':
    case 'token':
      return updateBody(layout, i, scenario)
    case 'unchanged':
      return seedBody(poolUser(layout, i))
    case 'new-device': {
      const n = knownUser(layout, i, 0.25)
      // Without `visits`, which update and token change, the metadata always equals what is stored: only the link is new.
      const metadata = seedMetadata(n)
      delete metadata.visits
      return { user_id: seedUserId(n), datafast_visitor_id: uuidFrom(`device-visitor-${i}`), ...metadata }
    }
  }
}

/** The parts of a body, as the identify route splits them. */
export function splitBody (body: IdentifyRequest): { userId: string, visitorId: string, metadata: Metadata } {
  const metadata: Metadata = {}
  for (const [name, value] of Object.entries(body)) {
    if (name !== 'user_id' && name !== 'datafast_visitor_id') metadata[name] = value
  }
  return { userId: body.user_id, visitorId: body.datafast_visitor_id, metadata }
}
