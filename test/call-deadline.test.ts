import { execFileSync } from 'node:child_process'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { expectError, expectSuccess, identify, visitorId } from './helper.js'
import { appOnOwnDatabase, type AppOnOwnDatabase } from './own-database.js'

/**
 * A stalled database (SIGSTOP: connections open, nothing answered) holds each
 * command until its socket timeout, and a call makes several: the call's own
 * deadline (docs/reliability.md#no-call-hangs) answers it 503 first.
 */

/** Under the socket timeout (twice MONGO_TIMEOUT_MS, src/database.ts), which would otherwise end the stalled call first. */
const MONGO_TIMEOUT_MS = 1000
const CALL_DEADLINE_MS = 1500
let own: AppOnOwnDatabase

/** The FerretDB this test file started: the only one that is a child of this process. */
function ownDatabasePid (): number {
  const pids = execFileSync('pgrep', ['-P', String(process.pid), 'ferretdb'], { encoding: 'utf8' }).trim().split('\n')
  expect(pids).toHaveLength(1)
  return Number(pids[0])
}

beforeAll(async () => { own = await appOnOwnDatabase({ MONGO_TIMEOUT_MS, CALL_DEADLINE_MS }) })
afterAll(async () => { await own.close() })

it('a call on a stalled database is answered 503 by the call deadline, and calls succeed again once it resumes', async () => {
  const { app, site } = own
  const call = async (userId: string) => await identify(app, { auth: site.key, body: { user_id: userId, datafast_visitor_id: visitorId() } })
  expectSuccess(await call('before_stall'))

  const pid = ownDatabasePid()
  process.kill(pid, 'SIGSTOP')
  let stalled
  try {
    stalled = await call('during_stall')
  } finally {
    process.kill(pid, 'SIGCONT')
  }
  // Without the deadline the socket timeout ends the call first, as "The database is unavailable".
  expect(expectError(stalled, 503)).toBe('The service could not answer in time; try again shortly')
  expect(stalled.headers['retry-after']).toBeDefined()

  expectSuccess(await call('after_stall'))
}, 30_000)
