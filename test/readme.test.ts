import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ConfigSchema } from '../src/config.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

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
