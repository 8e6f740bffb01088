import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

export interface ScriptRun { code: number | null, stdout: string, stderr: string }

/** Runs a TypeScript entry point of the repository in a child process under tsx; code is null when it was killed at the timeout. */
export async function runScript (script: string, args: string[], options: { env: NodeJS.ProcessEnv, stdin?: string, timeoutMs: number }): Promise<ScriptRun> {
  return await new Promise((resolve) => {
    const child = execFile(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: root, env: options.env, timeout: options.timeoutMs, maxBuffer: 64 * 1024 * 1024
    }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr })
    })
    child.stdin?.end(options.stdin)
  })
}
