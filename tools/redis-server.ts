import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'

/** A free TCP port on 127.0.0.1, for a server that cannot pick its own. */
export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  return address.port
}

/** A real redis-server (Debian's package) on a free port, without persistence; the tests and the chaos run kill and restart it. */
export class RedisServer {
  private process: ChildProcess | null = null

  private constructor (readonly port: number) {}

  static async start (): Promise<RedisServer> {
    const server = new RedisServer(await freePort())
    await server.restart()
    return server
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  /** Starts it again on the same port (after a kill), resolving once it accepts connections. */
  async restart (): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'inherit']
    })
    this.process = child
    let output = ''
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString()
        if (output.includes('Ready to accept connections')) resolve()
      })
      child.once('exit', (code) => { reject(new Error(`redis-server exited with ${String(code)}: ${output}`)) })
    })
  }

  /** SIGSTOP (or SIGCONT): connections stay open but nothing is answered, as with a hung or overloaded Redis. */
  hang (hung: boolean): void {
    this.process?.kill(hung ? 'SIGSTOP' : 'SIGCONT')
  }

  /** SIGKILL, as a crash or an OOM kill would stop it. */
  async kill (): Promise<void> {
    const child = this.process
    this.process = null
    if (child === null || child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGKILL')
    await once(child, 'exit')
  }
}
