import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ObjectId } from 'mongodb'
import type { App } from '../src/app.js'
import { ALL_PERMISSIONS, IDENTIFY_DELETE, IDENTIFY_READ, IDENTIFY_WRITE } from '../src/domain/credentials.js'
import { provisionWebsite } from './provision.js'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const configFile = join(root, 'scripts', 'schemathesis.toml')
const hooksFile = join(root, 'scripts', 'schemathesis_hooks.py')

export interface FuzzOptions {
  /** Hypothesis examples per operation in the fuzzing phase. */
  maxExamples: number
  seed: number
}

/** What the fuzzer sends as itself: a credential and the one website it may identify on. */
export interface FuzzCredential {
  secret: string
  websiteId: string
}

/**
 * The Schemathesis binary: $SCHEMATHESIS, or the pinned one installed (or
 * reinstalled when the pins changed) by scripts/setup-test-tools.sh, which is
 * quick when it is up to date.
 */
export function ensureSchemathesis (): string {
  const given = process.env.SCHEMATHESIS
  if (given !== undefined && given !== '') return given
  const setup = spawnSync('bash', [join(root, 'scripts', 'setup-test-tools.sh'), 'schemathesis'], { stdio: 'inherit' })
  if (setup.status !== 0) throw new Error(`Installing Schemathesis failed (scripts/setup-test-tools.sh exited with ${String(setup.status)}); see the output above`)
  return join(root, '.cache', 'venv', 'bin', 'schemathesis')
}

/**
 * Runs Schemathesis against a running service's own /openapi.json with a real
 * credential, websiteId pinned to its website (scripts/schemathesis.toml):
 * every check it has, positive and negative data, a fixed seed.
 * Resolves with its exit code; the caller's process keeps serving meanwhile.
 */
export async function runSchemathesis (baseUrl: string, credential: FuzzCredential, options: FuzzOptions, extraArgs: string[] = []): Promise<number> {
  const child = spawn(ensureSchemathesis(), [
    '--config-file', configFile,
    'run', `${baseUrl}/openapi.json`,
    '--header', `Authorization: Bearer ${credential.secret}`,
    '--checks', 'all',
    '--mode', 'all',
    '--seed', String(options.seed),
    '--max-examples', String(options.maxExamples),
    '--workers', '1',
    '--generation-database', 'none',
    // Strings the service refuses by a documented rule that no portable pattern can state:
    // unpaired surrogates (not UTF-8) and NUL; test/abuse.test.ts covers both.
    '--generation-codec', 'utf-8',
    '--generation-allow-x00', 'false',
    '--no-color',
    ...extraArgs
  ], { stdio: 'inherit', env: { ...process.env, FUZZ_WEBSITE_ID: credential.websiteId, SCHEMATHESIS_HOOKS: hooksFile } })
  const [code] = await once(child, 'exit') as [number | null]
  return code ?? 1
}

/** One fuzzing pass with one kind of credential, and how far its identify calls got. */
export interface FuzzPass {
  credential: 'df_ website key' | 'dft_ account token'
  exitCode: number
  /** Identify answers of this pass by status code, from /metrics. */
  statuses: Record<string, number>
  /** Profiles the pass left on its website, from the database. */
  profiles: number
  /** Profile reads answered 200 by id and by visitor: the fuzzer followed identify's links to real profiles. */
  profileReads: { byId: number, byVisitor: number }
}

const IDENTIFY_ROUTE = 'POST /api/v1/identify'
const PROFILE_BY_ID_ROUTE = 'GET /api/v1/profiles/:profileId'
const PROFILE_BY_VISITOR_ROUTE = 'GET /api/v1/visitors/:visitorId/profile'

/** Answers so far of each route ("METHOD /url") by status code, read once from the service's own http_requests_total. */
async function routeStatuses (app: App): Promise<Map<string, Record<string, number>>> {
  const response = await app.inject({ method: 'GET', url: '/metrics' })
  if (response.statusCode !== 200) throw new Error(`GET /metrics answered ${String(response.statusCode)}: fuzzing needs METRICS_ENABLED`)
  const byRoute = new Map<string, Record<string, number>>()
  for (const line of response.body.split('\n')) {
    if (!line.startsWith('http_requests_total{')) continue
    const labels = new Map([...line.matchAll(/(\w+)="([^"]*)"/g)].map((match): [string, string] => [String(match[1]), String(match[2])]))
    const route = `${labels.get('method') ?? ''} ${labels.get('route') ?? ''}`
    const status = labels.get('status_code')
    if (status === undefined) continue
    byRoute.set(route, { ...byRoute.get(route), [status]: Number(line.split(' ').at(-1)) })
  }
  return byRoute
}

function subtract (after: Record<string, number> = {}, before: Record<string, number> = {}): Record<string, number> {
  return Object.fromEntries(Object.entries(after)
    .map(([status, count]): [string, number] => [status, count - (before[status] ?? 0)])
    .filter(([, count]) => count !== 0))
}

/**
 * Fuzzes identify and the profile routes in two passes, each on a website of
 * its own: with a df_ website key, then with a dft_ account token holding
 * identify:write, identify:read and identify:delete for its website. The
 * Account API, where both credentials meet only 403, has its own pass.
 * Listens on a free loopback port.
 */
export async function fuzzIdentify (app: App, options: FuzzOptions): Promise<FuzzPass[]> {
  const keyed = await provisionWebsite(app.repositories, { accountName: 'Fuzzing', domain: 'fuzz.example', keyName: 'fuzz' })
  const tokenWebsite = await provisionWebsite(app.repositories, { accountId: keyed.accountId, domain: 'token.fuzz.example', keyName: 'unused' })
  const { token } = await app.repositories.credentials.createAccountToken({
    accountId: keyed.accountId, permissions: [IDENTIFY_WRITE, IDENTIFY_READ, IDENTIFY_DELETE], websiteIds: [tokenWebsite.websiteId], name: 'fuzz', expiresAt: null
  })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const passes: FuzzPass[] = []
  for (const [credential, secret, websiteId] of [
    ['df_ website key', keyed.key, keyed.websiteId],
    ['dft_ account token', token, tokenWebsite.websiteId]
  ] as const) {
    const before = await routeStatuses(app)
    const exitCode = await runSchemathesis(base, { secret, websiteId }, options, ['--include-tag', 'identify', '--include-tag', 'profiles'])
    const after = await routeStatuses(app)
    const during = (route: string): Record<string, number> => subtract(after.get(route), before.get(route))
    const statuses = during(IDENTIFY_ROUTE)
    const profileReads = { byId: during(PROFILE_BY_ID_ROUTE)['200'] ?? 0, byVisitor: during(PROFILE_BY_VISITOR_ROUTE)['200'] ?? 0 }
    const profiles = await app.mongo.db.collection('profiles').countDocuments({ websiteId: new ObjectId(websiteId) })
    passes.push({ credential, exitCode, statuses, profiles, profileReads })
  }
  return passes
}

/** Most identify calls get past authentication; about 98% do with websiteId pinned, about 30% without. */
const MIN_REACHED_SHARE = 0.8
/**
 * Distinct profiles per example asked for (the coverage phase adds a few hundred calls on a few users
 * whatever the count): 0.45 at 300 examples, 0.3 at 1,000, 0.24 at 5,000; 0.05 at 300 when values
 * of earlier calls were replayed.
 */
const MIN_PROFILES_PER_EXAMPLE = 0.1

/**
 * Checks that a pass tested the body, not the authentication: most identify
 * calls were answered 200 or 400 (with websiteId pinned to the credential's
 * website, a 400 comes from the body), over many distinct profiles.
 * Returns what falls short, in words.
 */
export function shortfalls (pass: FuzzPass, options: FuzzOptions): string[] {
  const calls = Object.values(pass.statuses).reduce((sum, count) => sum + count, 0)
  const reached = (pass.statuses['200'] ?? 0) + (pass.statuses['400'] ?? 0)
  const problems: string[] = []
  if (reached < MIN_REACHED_SHARE * calls) {
    problems.push(`${pass.credential}: only ${String(reached)} of ${String(calls)} identify calls reached the body (${JSON.stringify(pass.statuses)})`)
  }
  if (pass.profileReads.byId === 0 || pass.profileReads.byVisitor === 0) {
    problems.push(`${pass.credential}: profile reads answered 200 by id ${String(pass.profileReads.byId)} and by visitor ${String(pass.profileReads.byVisitor)} times; the fuzzer never reached a stored profile`)
  }
  const wanted = Math.ceil(MIN_PROFILES_PER_EXAMPLE * options.maxExamples)
  if (pass.profiles < wanted) {
    problems.push(`${pass.credential}: ${String(pass.profiles)} distinct profiles, fewer than ${String(wanted)} (${JSON.stringify(pass.statuses)})`)
  }
  return problems
}

/**
 * Fuzzes the Account API with an owner token (`*`, every website of its
 * account). A schema-valid expiresAt in the past is refused by a rule JSON
 * Schema cannot state ("in the future"), so the check that every
 * schema-valid body is accepted is left out of this pass only.
 */
export async function fuzzAccountApi (app: App, options: FuzzOptions): Promise<number> {
  const site = await provisionWebsite(app.repositories, { accountName: 'Fuzzing the Account API', domain: 'admin.fuzz.example', keyName: 'fuzz' })
  const { token } = await app.repositories.credentials.createAccountToken({
    accountId: site.accountId, permissions: [ALL_PERMISSIONS], websiteIds: [], name: 'fuzz owner', expiresAt: null
  })
  const base = app.server.listening ? `http://127.0.0.1:${String((app.server.address() as { port: number }).port)}` : await app.listen({ host: '127.0.0.1', port: 0 })
  return await runSchemathesis(base, { secret: token, websiteId: site.websiteId }, options, ['--include-tag', 'admin', '--exclude-checks', 'positive_data_acceptance'])
}
