import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { describe, expect, it } from 'vitest'
import { testDatabaseUrl } from './helper.js'

/** Runs src/server.ts the way `npm start` runs dist/server.js, with exactly this environment. */
function startServer (env: Record<string, string>) {
  const inherited = { ...process.env }
  delete inherited.MONGO_URL
  return spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: { ...inherited, NODE_ENV: 'production', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
}

async function exitOf (child: ReturnType<typeof startServer>): Promise<{ code: number | null, stderr: string }> {
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  return { code, stderr }
}

describe('server start', () => {
  it('refuses to start without MONGO_URL and says so', async () => {
    const { code, stderr } = await exitOf(startServer({}))
    expect(code).toBe(1)
    expect(stderr).toContain('MONGO_URL is not set')
  })

  it('refuses a bad setting and names the variable', async () => {
    const { code, stderr } = await exitOf(startServer({ MONGO_URL: testDatabaseUrl(), PORT: 'eighty' }))
    expect(code).toBe(1)
    expect(stderr).toContain('PORT="eighty" is invalid')
  })

  it('listens on a real socket, logs JSON lines, and exits 0 on SIGTERM', async () => {
    const child = startServer({ MONGO_URL: testDatabaseUrl(), PORT: '0', HOST: '127.0.0.1' })
    const lines = createInterface({ input: child.stdout })
    const logged: Record<string, unknown>[] = []
    const address = await new Promise<string>((resolve) => {
      lines.on('line', (line) => {
        const entry = JSON.parse(line) as Record<string, unknown>
        logged.push(entry)
        const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(String(entry.msg))
        if (match?.[1] !== undefined) resolve(match[1])
      })
    })
    const health = await fetch(`${address}/healthz`)
    expect(health.status).toBe(200)
    expect(await health.json()).toEqual({ status: 'ok' })
    const ready = await fetch(`${address}/readyz`)
    expect(ready.status).toBe(200)

    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    const [code] = await exited as [number | null]
    expect(code).toBe(0)
    expect(logged.length).toBeGreaterThan(0)
  })
})
