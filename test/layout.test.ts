import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = new URL('..', import.meta.url).pathname

/** Where the drawing's descriptions start. */
const DESCRIPTION_COLUMN = 20

/** The paths the Layout drawing of docs/development.md names: one per line, indented two spaces a level, a folder ending in "/". */
function drawnPaths (): string[] {
  const doc = readFileSync(join(root, 'docs/development.md'), 'utf8')
  const section = doc.slice(doc.indexOf('## Layout'))
  const block = section.slice(section.indexOf('```\n') + 4, section.indexOf('\n```', section.indexOf('```\n') + 4))
  const parents: string[] = []
  const paths: string[] = []
  for (const line of block.split('\n')) {
    const indent = line.length - line.trimStart().length
    // A line indented to the descriptions' column goes on describing the one above.
    if (line.trim() === '' || indent >= DESCRIPTION_COLUMN) continue
    const name = line.trim().split(/\s+/)[0] ?? ''
    const depth = indent / 2
    if (!Number.isInteger(depth) || depth > parents.length) throw new Error(`The drawing's line "${line.trim()}" is not indented two spaces under its folder`)
    parents.length = depth
    const path = (parents.at(-1) ?? '') + name
    paths.push(path)
    if (name.endsWith('/')) parents[depth] = path
  }
  return paths
}

/** Small files: one look at a file shows what it does (docs/development.md#layout). */
const MAX_FILE_LINES = 300

/** Everything under src/, as paths from the root, a folder's ending in "/". */
const underSrc = readdirSync(join(root, 'src'), { recursive: true, withFileTypes: true })
  .map((entry) => `${relative(root, join(entry.parentPath, entry.name))}${entry.isDirectory() ? '/' : ''}`)
const filesUnderSrc = underSrc.filter((path) => !path.endsWith('/'))
const foldersUnderSrc = underSrc.filter((path) => path.endsWith('/'))

describe('the layout drawn in docs/development.md', () => {
  const drawn = drawnPaths()

  it('names only files and folders that exist', () => {
    expect(drawn.length).toBeGreaterThan(20)
    expect(drawn.filter((path) => !existsSync(join(root, path)))).toEqual([])
  })

  it('draws every folder of src/, and every file at its root', () => {
    const rootFiles = readdirSync(join(root, 'src')).filter((name) => name.endsWith('.ts')).map((name) => `src/${name}`)
    const missing = [...foldersUnderSrc, ...rootFiles].filter((path) => !drawn.includes(path))
    expect(missing).toEqual([])
  })

  it('leaves only app.ts, server.ts and config.ts at the root of src/', () => {
    expect(readdirSync(join(root, 'src')).filter((name) => name.endsWith('.ts')).sort()).toEqual(['app.ts', 'config.ts', 'server.ts'])
  })

  it(`keeps every file of src/ at ${MAX_FILE_LINES} lines or fewer`, () => {
    const long = filesUnderSrc.map((path) => ({ path, lines: readFileSync(join(root, path), 'utf8').split('\n').length - 1 })).filter(({ lines }) => lines > MAX_FILE_LINES)
    expect(long).toEqual([])
  })
})
