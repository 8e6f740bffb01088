import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, launchChromium } from './helper.js'

const app = await buildTestApp()
let browser: Browser
let base: string

beforeAll(async () => {
  base = await app.listen({ host: '127.0.0.1', port: 0 })
  browser = await launchChromium()
})

afterAll(async () => {
  await browser.close()
  await app.close()
})

describe('GET /docs in a real browser', () => {
  it('renders the interactive docs with the identify operation, from local assets only', async () => {
    const page = await browser.newPage()
    const requested: string[] = []
    page.on('request', (request) => { requested.push(request.url()) })
    await page.goto(`${base}/docs`)
    const operation = page.locator('.opblock-post .opblock-summary-path', { hasText: /^\s*\/api\/v1\/identify\s*$/ })
    await operation.waitFor({ timeout: 15_000 })
    expect(await page.locator('.info .title').innerText()).toContain('Identify service')

    await operation.click()
    await page.locator('.opblock-post .opblock-body').waitFor()
    const body = await page.locator('.opblock-post .opblock-body').innerText()
    expect(body).toContain('websiteId')
    expect(body).toContain('401')
    expect(body).toContain('413')

    expect(requested.length).toBeGreaterThan(0)
    expect(requested.filter((url) => !url.startsWith(base))).toEqual([])
    await page.close()
  })
})
