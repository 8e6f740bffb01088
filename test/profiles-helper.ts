import { expect } from 'vitest'
import type { LightMyRequestResponse } from 'fastify'
import type { CommandFailedEvent, CommandStartedEvent, CommandSucceededEvent, Document, MongoClient } from 'mongodb'
import type { App } from '../src/app.js'
import type { Profile } from '../src/schemas/profiles.js'
import { identify, type TestWebsite } from './helper.js'

/** P as it travels: the dates as ISO 8601 strings. */
export type ProfileJson = Omit<Profile, 'createdAt' | 'updatedAt'> & { createdAt: string, updatedAt: string }

export const P_KEYS = ['id', 'websiteId', 'userId', 'metadata', 'visitorIds', 'createdAt', 'updatedAt']

/** A call of a profile route through inject; `query` may hold websiteId, user_id, limit, cursor. */
export async function profilesCall (app: App, options: {
  method?: 'GET' | 'DELETE'
  path: string
  auth?: string
  query?: Record<string, string>
}): Promise<LightMyRequestResponse> {
  return await app.inject({
    method: options.method ?? 'GET',
    url: `/api/v1${options.path}`,
    query: options.query ?? {},
    headers: options.auth === undefined ? {} : { authorization: `Bearer ${options.auth}` }
  })
}

/** The profile of a 200 answer, checked to be exactly P. */
export function profileOf (response: LightMyRequestResponse): ProfileJson {
  expect(response.statusCode, response.body).toBe(200)
  const body = response.json<{ status: string, data: { profile: ProfileJson } }>()
  expect(body.status).toBe('success')
  expect(Object.keys(body.data)).toEqual(['profile'])
  expect(Object.keys(body.data.profile)).toEqual(P_KEYS)
  return body.data.profile
}

/** Every profile of a website, following nextCursor until it is null. */
export async function walkProfiles (app: App, auth: string, options: { limit?: number, query?: Record<string, string>, between?: () => Promise<void> } = {}): Promise<ProfileJson[]> {
  const seen: ProfileJson[] = []
  let cursor: string | null = null
  do {
    const query: Record<string, string> = { ...options.query, ...(options.limit === undefined ? {} : { limit: String(options.limit) }), ...(cursor === null ? {} : { cursor }) }
    const response = await profilesCall(app, { path: '/profiles', auth, query })
    expect(response.statusCode, response.body).toBe(200)
    const { data } = response.json<{ data: { profiles: ProfileJson[], nextCursor: string | null } }>()
    seen.push(...data.profiles)
    cursor = data.nextCursor
    await options.between?.()
  } while (cursor !== null)
  return seen
}

/** An identify call that must succeed; returns its profileId and action. */
export async function identified (app: App, site: TestWebsite, userId: string, visitor: string, metadata: Record<string, unknown> = {}): Promise<{ profileId: string, action: string }> {
  const response = await identify(app, { auth: site.key, body: { user_id: userId, datafast_visitor_id: visitor, ...metadata } })
  expect(response.statusCode, response.body).toBe(200)
  return response.json<{ data: { profileId: string, action: string } }>().data
}

/** What a race monitor counted since `since()`; a kind is `<command> <collection>` (`findAndModify profiles remove` for a findOneAndDelete). */
export interface RaceCounts {
  /** Writes of this kind that were in flight while another write named one of the same documents: races the database really ran. */
  overlaps: (kind: string) => number
  /** Writes of this kind that lost a race to insert an `_id` (code 11000). */
  duplicateKeys: (kind: string) => number
  /** Connections that carried a command: the pool really served the calls side by side. */
  connections: () => number
}

interface RaceWindow {
  overlaps: Map<string, number>
  duplicateKeys: Map<string, number>
  connections: Set<string>
}

interface WriteInFlight {
  kind: string
  documents: string[]
  connection: string
  /** Counted once as an overlap already. */
  overlapped: boolean
}

const bump = (counts: Map<string, number>, kind: string): void => { counts.set(kind, (counts.get(kind) ?? 0) + 1) }

/** `_id` values a filter names: one, or those of an $in. */
function idsOf (filter: unknown): unknown[] {
  const id = (filter as { _id?: unknown } | undefined)?._id
  if (id === undefined) return []
  return typeof id === 'object' && id !== null && '$in' in id && Array.isArray(id.$in) ? id.$in : [id]
}

/** The kind of a write command and the documents (collection and `_id`) it names; null for reads. */
function writeOf (command: Document, commandName: string): { kind: string, documents: string[] } | null {
  const collection = String(command[commandName])
  const ids = ((): unknown[] | null => {
    switch (commandName) {
      case 'insert': return (command.documents as Document[]).map(({ _id }) => _id as unknown)
      case 'update': return (command.updates as Document[]).flatMap(({ q }) => idsOf(q))
      case 'delete': return (command.deletes as Document[]).flatMap(({ q }) => idsOf(q))
      case 'findAndModify': return idsOf(command.query)
      default: return null
    }
  })()
  if (ids === null) return null
  const kind = `${commandName} ${collection}${commandName === 'findAndModify' && command.remove === true ? ' remove' : ''}`
  return { kind, documents: ids.map((id) => `${collection} ${String(id)}`) }
}

const isDuplicateKey = (error: unknown): boolean => (error as { code?: unknown } | undefined)?.code === 11000

/**
 * Counts, through the client's command monitoring (the client needs
 * `monitorCommands=true`), the races its commands really ran: writes of one
 * document in flight at once over different connections, and the inserts
 * that lost to another. A race test expects its count above zero, so that it
 * never passes without the race it is about.
 */
export function watchRaces (client: MongoClient): { since: () => RaceCounts } {
  const windows: RaceWindow[] = []
  const inFlight = new Map<number, WriteInFlight>()
  const each = (count: (window: RaceWindow) => void): void => { for (const window of windows) count(window) }
  const overlapped = (write: WriteInFlight): void => {
    if (write.overlapped) return
    write.overlapped = true
    each((window) => { bump(window.overlaps, write.kind) })
  }
  client.on('commandStarted', (event: CommandStartedEvent) => {
    const connection = `${event.address} ${String(event.connectionId)}`
    each((window) => { window.connections.add(connection) })
    const write = writeOf(event.command, event.commandName)
    if (write === null) return
    const started: WriteInFlight = { ...write, connection, overlapped: false }
    for (const other of inFlight.values()) {
      if (other.connection === connection || !other.documents.some((document) => started.documents.includes(document))) continue
      overlapped(other)
      overlapped(started)
    }
    inFlight.set(event.requestId, started)
  })
  const ended = (event: CommandSucceededEvent | CommandFailedEvent, lost: boolean): void => {
    const write = inFlight.get(event.requestId)
    inFlight.delete(event.requestId)
    if (write !== undefined && lost) each((window) => { bump(window.duplicateKeys, write.kind) })
  }
  client.on('commandSucceeded', (event: CommandSucceededEvent) => {
    ended(event, (event.reply as { writeErrors?: unknown[] }).writeErrors?.some(isDuplicateKey) === true)
  })
  client.on('commandFailed', (event: CommandFailedEvent) => { ended(event, isDuplicateKey(event.failure)) })
  return {
    since: () => {
      const window: RaceWindow = { overlaps: new Map(), duplicateKeys: new Map(), connections: new Set() }
      windows.push(window)
      return {
        overlaps: (kind) => window.overlaps.get(kind) ?? 0,
        duplicateKeys: (kind) => window.duplicateKeys.get(kind) ?? 0,
        connections: () => window.connections.size
      }
    }
  }
}
