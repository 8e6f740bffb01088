import { setFlagsFromString } from 'node:v8'

/** Old generation grows 1.5x, not V8's up to 4x: the headroom held only garbage (docs/internals.md#heap-growth). */
export function limitHeapGrowth (): void {
  if (process.execArgv.some((flag) => /^--heap[-_]growing[-_]percent/.test(flag))) return
  setFlagsFromString('--heap-growing-percent=50')
}
