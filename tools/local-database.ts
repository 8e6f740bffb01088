import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { appendFileSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The database for development, tests and benchmarks: the server at
 * MONGO_URL when it is set, otherwise DocumentDB (PostgreSQL 15 and its
 * MongoDB-wire gateway) started on free loopback ports in a data folder and
 * stopped again with this process, even when this process is killed.
 */
export interface LocalDatabase {
  /** Connection string with credentials and no database name; see withDatabaseName. */
  url: string
  /** True when this process started DocumentDB (and so may stop and start it). */
  embedded: boolean
  /**
   * Stops PostgreSQL, the gateway or both: SIGTERM shuts down cleanly,
   * SIGKILL kills at once (PostgreSQL with every backend); the data is kept for start().
   */
  stop: (signal?: 'SIGTERM' | 'SIGKILL', part?: DatabasePart) => Promise<void>
  /** Starts whatever is down again, on the same ports and data. */
  start: () => Promise<void>
  /** The process id of a running part, else null (SIGSTOP the gateway to stall every call). */
  pid: (part: Exclude<DatabasePart, 'all'>) => number | null
  /** Stops for good and removes a temporary data folder. */
  close: () => Promise<void>
}

export type DatabasePart = 'all' | 'postgres' | 'gateway'

// One helper for connection strings, here too for the scripts and tests that name a database on this server.
export { withDatabaseName } from '../src/storage/mongo-url.js'

type Log = (message: string) => void
const stderrLog: Log = (message) => { process.stderr.write(`${message}\n`) }

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const cacheDir = join(root, '.cache', 'documentdb')
const gatewayBinary = join(cacheDir, 'bin', 'documentdb_gateway')
/** Written by npm run db:build; its first line fingerprints the installed engine. */
const stampFile = join(cacheDir, 'installed.stamp')
const buildScript = join(root, 'scripts', 'documentdb', 'build.sh')
const pgBin = '/usr/lib/postgresql/15/bin'
const START_TIMEOUT_MS = 60_000
const USER_NAME = 'identify'

/** Builds the engine on first use (npm run db:build), with its steps printed. */
export function ensureEngine (log: Log = stderrLog): void {
  if (existsSync(gatewayBinary) && existsSync(join(pgBin, 'postgres'))) return
  log('DocumentDB is not built yet: building it now (npm run db:build; about 6 minutes the first time)...')
  const { status } = spawnSync('bash', [buildScript], { stdio: ['ignore', process.stderr, process.stderr] })
  if (status !== 0) throw new Error('Building DocumentDB failed; see the output above, or set MONGO_URL to a MongoDB server')
}

/** PostgreSQL refuses to run as root: as root, both servers run as the OS user postgres that Debian's package made. */
type ServerUser = { uid: number, gid: number } | null

function serverUser (dir: string): ServerUser {
  if (process.getuid?.() !== 0) return null
  const id = (flag: string): number => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim())
  // The user postgres must be able to reach the folder through every folder above it.
  for (let above = dirname(dir); above !== dirname(above); above = dirname(above)) {
    if ((statSync(above).mode & 0o001) === 0) {
      throw new Error(`PostgreSQL runs as the OS user postgres, which cannot enter ${above} (no search permission for others): chmod o+x ${above}, or keep the data elsewhere`)
    }
  }
  return { uid: id('-u'), gid: id('-g') }
}

/** What a data folder keeps across restarts: its ports and its generated password. */
interface Settings {
  gatewayPort: number
  postgresPort: number
  password: string
}

async function isFree (port: number): Promise<boolean> {
  const probe = createServer()
  try {
    probe.listen(port, '127.0.0.1')
    await once(probe, 'listening')
    return true
  } catch {
    return false
  } finally {
    probe.close()
    await once(probe, 'close')
  }
}

async function freePort (): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const { port } = probe.address() as { port: number }
  probe.close()
  await once(probe, 'close')
  return port
}

async function canConnect (port: number): Promise<boolean> {
  const socket: Socket = connect(port, '127.0.0.1')
  try {
    await once(socket, 'connect')
    return true
  } catch {
    return false
  } finally {
    socket.destroy()
  }
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolveSleep) => setTimeout(resolveSleep, ms)) }

async function waitUntil (what: string, condition: () => boolean | Promise<boolean>, logFile: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS
  while (!await condition()) {
    if (Date.now() > deadline) {
      const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n') : ''
      throw new Error(`${what} within ${String(START_TIMEOUT_MS / 1000)} s; the end of ${logFile}:\n${tail}`)
    }
    await sleep(50)
  }
}

const isAlive = (pid: number | null): pid is number => {
  // Never 0 or less: kill() would signal a whole process group, ours included.
  if (pid === null || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** One data folder: its paths, its servers and how to start and stop them. */
class Cluster {
  readonly pgdata: string
  readonly socketDir: string
  readonly gatewayDir: string
  private postgresPid: number | null = null
  private gatewayPid: number | null = null

  constructor (readonly dir: string, readonly settings: Settings, private readonly user: ServerUser) {
    this.pgdata = join(dir, 'pgdata')
    this.socketDir = join(dir, 'run')
    this.gatewayDir = join(dir, 'gateway')
  }

  private owned (path: string): string {
    mkdirSync(path, { recursive: true })
    if (this.user !== null) chownSync(path, this.user.uid, this.user.gid)
    return path
  }

  /** Starts a server in the background, its output appended to the log file. */
  private launch (command: string, args: string[], logFile: string, cwd: string): ChildProcess {
    const log = openSync(logFile, 'a')
    try {
      // Detached: a Ctrl-C reaches only this process, which closes its clients before it stops the servers.
      const child = spawn(command, args, { cwd, detached: true, stdio: ['ignore', log, log], ...(this.user ?? {}) })
      child.unref()
      return child
    } finally {
      closeSync(log)
    }
  }

  private run (command: string, args: string[]): void {
    const result = spawnSync(command, args, { cwd: this.dir, encoding: 'utf8', ...(this.user ?? {}) })
    if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}${result.stdout}`)
  }

  /** A data folder's first start: a copy of the template, then its own role with its own password. */
  async initialize (template: string, temporary: boolean): Promise<void> {
    if (existsSync(join(this.pgdata, 'PG_VERSION'))) return
    this.owned(this.dir)
    // cp -a keeps the template's owner, the servers' user.
    execFileSync('cp', ['-a', join(template, 'pgdata'), this.pgdata])
    execFileSync('cp', ['-a', join(template, 'gateway'), this.gatewayDir])
    // A temporary folder (tests, benchmarks) skips fsync: a killed server loses nothing by it, only a crashed machine would.
    if (temporary) appendFileSync(join(this.pgdata, 'postgresql.conf'), 'fsync = off\n')
    await this.startPostgres()
    this.psql(`CREATE ROLE ${USER_NAME} WITH LOGIN INHERIT PASSWORD '${this.settings.password}' IN ROLE documentdb_admin_role; ALTER ROLE ${USER_NAME} CREATEROLE;`)
  }

  /** What every data folder starts from: initdb, the extension created, a certificate (the gateway loads one even without TLS). */
  async createTemplate (): Promise<void> {
    this.owned(this.dir)
    this.owned(this.pgdata)
    this.run(join(pgBin, 'initdb'), ['-D', this.pgdata, '--no-sync', '-U', 'postgres', '-E', 'UTF8', '--locale=C.UTF-8', '--auth-local=trust', '--auth-host=scram-sha-256'])
    appendFileSync(join(this.pgdata, 'postgresql.conf'), [
      '',
      '# DocumentDB (tools/local-database.ts; docs/documentdb.md)',
      "shared_preload_libraries = 'pg_cron, pg_documentdb_core, pg_documentdb'",
      "cron.database_name = 'postgres'",
      'cron.log_statement = off',
      'cron.log_run = off',
      "documentdb.enableBackgroundWorker = 'true'",
      "documentdb.enableBackgroundWorkerJobs = 'true'",
      'ssl = off',
      'max_connections = 300',
      ''
    ].join('\n'))
    await this.startPostgres()
    this.psql('CREATE EXTENSION IF NOT EXISTS documentdb CASCADE')
    await this.stopPart('postgres', 'SIGTERM')
    this.run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '3650', '-subj', '/CN=localhost',
      '-keyout', join(this.owned(this.gatewayDir), 'key.pem'), '-out', join(this.gatewayDir, 'cert.pem')])
  }

  /**
   * pg_cron's jobs (DocumentDB builds indexes on existing collections through
   * them) name the socket and port they connect to: the template's, or an
   * earlier port of this folder, until pointed here.
   */
  pointJobsHere (): void {
    this.psql(`UPDATE cron.job SET nodename = '${this.socketDir}', nodeport = ${String(this.settings.postgresPort)} WHERE nodename <> '${this.socketDir}' OR nodeport <> ${String(this.settings.postgresPort)}`)
  }

  private psql (sql: string): void {
    this.run(join(pgBin, 'psql'), ['-h', this.socketDir, '-p', String(this.settings.postgresPort), '-U', 'postgres', '-d', 'postgres', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql])
  }

  async startPostgres (): Promise<void> {
    if (isAlive(this.postgresPid)) return
    this.owned(this.socketDir)
    const socket = this.socketDir
    const logFile = join(this.dir, 'postgres.log')
    const child = this.launch(join(pgBin, 'postgres'), [
      '-D', this.pgdata, '-p', String(this.settings.postgresPort), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${socket}`,
      // pg_cron's jobs and DocumentDB's own connections (index builds, count) go through the socket, where local trust needs no password.
      '-c', `cron.host=${socket}`, '-c', `documentdb.localhost_connection_string=host=${socket}`
    ], logFile, this.dir)
    this.postgresPid = child.pid ?? null
    const pidFile = join(this.pgdata, 'postmaster.pid')
    // postmaster.pid names this process (a killed one's file stays behind) and, on its eighth line, says "ready" once connections are accepted.
    await waitUntil('PostgreSQL did not start', () => {
      if (!isAlive(child.pid ?? null) || child.exitCode !== null) throw new Error(`PostgreSQL exited; see ${logFile}`)
      const lines = existsSync(pidFile) ? readFileSync(pidFile, 'utf8').split('\n') : []
      return lines[0] === String(child.pid) && lines[7]?.trim() === 'ready'
    }, logFile)
  }

  async startGateway (): Promise<void> {
    if (isAlive(this.gatewayPid)) return
    const config = join(this.gatewayDir, 'SetupConfiguration.json')
    writeFileSync(config, JSON.stringify({
      NodeHostName: 'localhost',
      BlockedRolePrefixes: ['documentdb', 'citus', 'pg', 'internal_role'],
      PostgresSystemUser: 'postgres',
      PostgresHostName: this.socketDir,
      PostgresPort: this.settings.postgresPort,
      PostgresDatabase: 'postgres',
      GatewayListenPort: this.settings.gatewayPort,
      UseLocalHost: true,
      EnforceSslTcp: false,
      CertificateOptions: { CertType: 'PemFile', FilePath: join(this.gatewayDir, 'cert.pem'), KeyFilePath: join(this.gatewayDir, 'key.pem') },
      // Upstream's file has the emulator's 5 s / 10 s; these are the gateway's own defaults.
      TransactionTimeoutSecs: 30,
      CursorTimeoutSecs: 600,
      PostgresCommandTimeoutSecs: 120
    }, null, 2))
    const logFile = join(this.gatewayDir, 'gateway.log')
    const child = this.launch(gatewayBinary, [config], logFile, this.gatewayDir)
    this.gatewayPid = child.pid ?? null
    writeFileSync(join(this.dir, 'gateway.pid'), `${String(child.pid)}\n`)
    await waitUntil('The gateway did not listen', async () => {
      if (child.exitCode !== null) throw new Error(`The gateway exited with ${String(child.exitCode)}; see ${logFile}`)
      return await canConnect(this.settings.gatewayPort)
    }, logFile)
  }

  async stopPart (part: 'postgres' | 'gateway', signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const pid = part === 'postgres' ? this.postgresPid : this.gatewayPid
    // Every PostgreSQL process works in its data folder; backends are sessions of their own, out of the postmaster's group.
    const processes = (): number[] => part === 'postgres' ? processesIn(this.pgdata) : isAlive(pid) ? [pid] : []
    if (isAlive(pid)) {
      // SIGINT is a fast shutdown for PostgreSQL (clients disconnected) and Ctrl-C for the gateway.
      process.kill(pid, signal === 'SIGKILL' ? 'SIGKILL' : 'SIGINT')
      const deadline = Date.now() + (signal === 'SIGKILL' ? 0 : 10_000)
      while (isAlive(pid) && Date.now() < deadline) await sleep(20)
    }
    // What a crash leaves, or a shutdown that hung: killed, as the OS would.
    for (let left = processes(); left.length > 0; left = processes()) {
      for (const survivor of left) killQuietly(survivor, 'SIGKILL')
      await sleep(20)
    }
    if (part === 'postgres') this.postgresPid = null
    else this.gatewayPid = null
  }

  pid (part: 'postgres' | 'gateway'): number | null {
    const pid = part === 'postgres' ? this.postgresPid : this.gatewayPid
    return isAlive(pid) ? pid : null
  }
}

/** Sends the signal unless the process is gone already. */
function killQuietly (pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal)
  } catch { /* exited meanwhile */ }
}

/** The processes whose working folder is this one (Linux). */
function processesIn (dir: string): number[] {
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) => {
    try {
      return readlinkSync(`/proc/${String(pid)}/cwd`) === dir
    } catch {
      return false
    }
  })
}

/**
 * A shell that outlives nothing: when this process ends, however it ends,
 * its end of the pipe closes, and the shell stops both servers (and removes
 * a temporary folder).
 */
function startWatchdog (cluster: Cluster, temporary: boolean): () => void {
  const script = `cat >/dev/null
gateway=$(cat "$1/gateway.pid" 2>/dev/null) && grep -qa documentdb_gateway "/proc/$gateway/cmdline" 2>/dev/null && kill -KILL "$gateway"
postmaster=$(head -1 "$1/pgdata/postmaster.pid" 2>/dev/null) && grep -qa postgres "/proc/$postmaster/cmdline" 2>/dev/null && kill -INT "$postmaster"
for _ in $(seq 100); do [ -f "$1/pgdata/postmaster.pid" ] || break; sleep 0.1; done
for p in /proc/[0-9]*; do [ "$(readlink "$p/cwd")" = "$1/pgdata" ] && kill -KILL "\${p#/proc/}"; done
if [ "$2" = temporary ]; then rm -rf "$1"; fi`
  const child = spawn('sh', ['-c', script, 'watchdog', cluster.dir, temporary ? 'temporary' : 'kept'], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] })
  child.unref()
  ;(child.stdin as unknown as Socket).unref()
  return () => { if (child.pid !== undefined) killQuietly(-child.pid, 'SIGKILL') }
}

async function loadSettings (file: string): Promise<Settings> {
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as Settings
  return { gatewayPort: await freePort(), postgresPort: await freePort(), password: randomBytes(18).toString('base64url') }
}

/** The ports a kept folder had when they are free again; new free ones otherwise, said in the log. */
async function portsFor (settings: Settings, log: Log): Promise<Settings> {
  const [gatewayFree, postgresFree] = [await isFree(settings.gatewayPort), await isFree(settings.postgresPort)]
  if (gatewayFree && postgresFree) return settings
  if (!gatewayFree) log(`Port ${String(settings.gatewayPort)} of the local database is taken, so it moves to a new one: a MONGO_URL exported earlier needs the new port.`)
  return {
    ...settings,
    gatewayPort: gatewayFree ? settings.gatewayPort : await freePort(),
    postgresPort: postgresFree ? settings.postgresPort : await freePort()
  }
}

/**
 * The template data folder of the installed engine, made once (in the
 * temporary folder, whose path is short enough for PostgreSQL's socket) and
 * kept under .cache/documentdb/: a copy of it starts in a second where
 * initdb and CREATE EXTENSION take several.
 */
async function engineTemplate (user: ServerUser): Promise<string> {
  const stamp = existsSync(stampFile) ? readFileSync(stampFile, 'utf8').slice(0, 16) : 'unstamped'
  const template = join(cacheDir, `template-${stamp}`)
  if (existsSync(join(template, 'pgdata', 'PG_VERSION'))) return template
  const building = mkdtempSync(join(tmpdir(), 'identify-db-template-'))
  try {
    await new Cluster(building, { gatewayPort: 0, postgresPort: await freePort(), password: '' }, user).createTemplate()
    const partial = `${template}.${String(process.pid)}`
    execFileSync('cp', ['-a', building, partial])
    // Another process may have made it meanwhile: then this copy goes.
    try { renameSync(partial, template) } catch { rmSync(partial, { recursive: true, force: true }) }
  } finally {
    rmSync(building, { recursive: true, force: true })
  }
  return template
}

export interface StartDatabaseOptions {
  /** Keep the data, the ports and the password here (development); a temporary folder otherwise, removed by close(). */
  dataDir?: string
  log?: Log
  /** Start DocumentDB even when MONGO_URL is set, for tests that must stop their own server. */
  embedded?: boolean
}

export async function startDatabase (options: StartDatabaseOptions = {}): Promise<LocalDatabase> {
  const external = process.env.MONGO_URL
  if (options.embedded !== true && external !== undefined && external !== '') {
    const noop = async (): Promise<void> => {}
    return { url: external, embedded: false, stop: noop, start: noop, pid: () => null, close: noop }
  }
  const log = options.log ?? stderrLog
  ensureEngine(log)
  const temporary = options.dataDir === undefined
  // A short path: PostgreSQL's socket path must stay under 108 bytes.
  const chosen = options.dataDir ?? mkdtempSync(join(tmpdir(), 'identify-db-'))
  mkdirSync(chosen, { recursive: true })
  // As the processes see it, so that their working folders compare equal.
  const dir = realpathSync(chosen)
  const settingsFile = join(dir, 'local.json')
  const settings = await portsFor(await loadSettings(settingsFile), log)
  writeFileSync(settingsFile, `${JSON.stringify(settings, null, 2)}\n`, { mode: 0o600 })

  const user = serverUser(dir)
  const cluster = new Cluster(dir, settings, user)
  const stopWatchdog = startWatchdog(cluster, temporary)
  const startAll = async (): Promise<void> => {
    await cluster.startPostgres()
    cluster.pointJobsHere()
    await cluster.startGateway()
  }
  const stopParts = async (signal: 'SIGTERM' | 'SIGKILL', part: DatabasePart): Promise<void> => {
    if (part !== 'postgres') await cluster.stopPart('gateway', signal)
    if (part !== 'gateway') await cluster.stopPart('postgres', signal)
  }
  let closed: Promise<void> | undefined
  try {
    await cluster.initialize(await engineTemplate(user), temporary)
    await startAll()
  } catch (error) {
    await stopParts('SIGKILL', 'all')
    stopWatchdog()
    throw error
  }
  return {
    url: `mongodb://${USER_NAME}:${settings.password}@127.0.0.1:${String(settings.gatewayPort)}/?authMechanism=SCRAM-SHA-256&authSource=admin`,
    embedded: true,
    stop: async (signal = 'SIGTERM', part = 'all') => { await stopParts(signal, part) },
    start: startAll,
    pid: (part) => cluster.pid(part),
    close: async () => {
      closed ??= (async () => {
        await stopParts('SIGTERM', 'all')
        stopWatchdog()
        if (temporary) rmSync(dir, { recursive: true, force: true })
      })()
      await closed
    }
  }
}
