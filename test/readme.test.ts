import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { ConfigSchema } from '../src/config.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const read = (path: string): string => readFileSync(join(root, path), 'utf8')
const readme = read('README.md')

/** Every file under `dir` (relative to the root) whose name ends with one of `extensions`. */
function filesUnder (dir: string, extensions: string[]): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((name) => extensions.some((extension) => name.endsWith(extension)))
    .map((name) => join(dir, name))
}

/** The anchors of a Markdown file's headings, as GitHub makes them; headings inside code fences are not headings. */
function anchorsOf (markdown: string): Set<string> {
  const anchors = new Set<string>()
  let fenced = false
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced
    const heading = fenced ? null : /^#{1,6}\s+(.*)$/.exec(line)
    if (heading?.[1] === undefined) continue
    const slug = heading[1].trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
    let unique = slug
    for (let n = 1; anchors.has(unique); n++) unique = `${slug}-${String(n)}`
    anchors.add(unique)
  }
  return anchors
}

const markdownFiles = ['README.md', ...filesUnder('docs', ['.md'])]
const codeFiles = [
  ...['test', 'src', 'tools', 'clients/node/src', 'clients/node/scripts', 'clients/node/test'].flatMap((dir) => filesUnder(dir, ['.ts'])),
  ...filesUnder('scripts', ['.ts', '.sh'])
]

/** Each page's anchors, read once. */
const anchorsByPage = new Map<string, Set<string>>()
const anchorsIn = (path: string): Set<string> => anchorsByPage.get(path) ?? anchorsByPage.set(path, anchorsOf(read(path))).get(path) ?? new Set()

describe('README', () => {
  it('starts with the command that runs the service and the one that runs the tests', () => {
    const firstScreen = readme.split('\n').slice(0, 20).join('\n')
    expect(firstScreen).toContain('npm ci && npm run dev')
    expect(firstScreen).toContain('npm ci && npm test')
  })

  it.each(Object.entries(ConfigSchema.properties))('documents %s with its default', (name, schema) => {
    const fallback = (schema as { default: unknown }).default
    const shown = fallback === '' ? '(none)' : `\`${String(fallback)}\``
    expect(readme).toContain(`| \`${name}\` | ${shown} |`)
  })
})

describe('documentation links', () => {
  it('every docs page a source or test file names exists, and every anchor it cites is a heading there', () => {
    const broken: string[] = []
    for (const file of codeFiles) {
      for (const [, doc, anchor] of read(file).matchAll(/\bdocs\/([\w.-]+\.md)(?:#([\w-]+))?/g)) {
        if (doc === undefined || !existsSync(join(root, 'docs', doc))) broken.push(`${file}: docs/${String(doc)}`)
        else if (anchor !== undefined && !anchorsIn(`docs/${doc}`).has(anchor)) broken.push(`${file}: docs/${doc}#${anchor}`)
      }
    }
    expect(broken).toStrictEqual([])
  })

  it.each(markdownFiles)('every relative link in %s leads to a file, and to a heading of it', (file) => {
    const broken: string[] = []
    for (const [, target] of read(file).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (target === undefined || /^[a-z]+:/.test(target)) continue
      const [path = '', anchor] = target.split('#')
      const linked = path === '' ? file : relative(root, join(root, dirname(file), path))
      if (!existsSync(join(root, linked))) broken.push(target)
      else if (anchor !== undefined && linked.endsWith('.md') && !anchorsIn(linked).has(anchor)) broken.push(target)
    }
    expect(broken).toStrictEqual([])
  })
})
