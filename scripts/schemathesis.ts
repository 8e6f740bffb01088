import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const schemathesisBinary = process.env.SCHEMATHESIS ?? join(root, '.cache', 'venv', 'bin', 'schemathesis')

export interface FuzzOptions {
  maxExamples: number
  seed: number
}

/**
 * Runs Schemathesis against a running service's own /openapi.json with a real
 * key: every check it has, positive and negative data, a fixed seed.
 * Resolves with its exit code; the caller's process keeps serving meanwhile.
 */
export async function runSchemathesis (baseUrl: string, key: string, options: FuzzOptions): Promise<number> {
  if (!existsSync(schemathesisBinary)) {
    throw new Error(`Schemathesis is not installed at ${schemathesisBinary}: run bash scripts/setup-test-tools.sh`)
  }
  const child = spawn(schemathesisBinary, [
    'run', `${baseUrl}/openapi.json`,
    '--header', `Authorization: Bearer ${key}`,
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
    '--no-color'
  ], { stdio: 'inherit' })
  const [code] = await once(child, 'exit') as [number | null]
  return code ?? 1
}
