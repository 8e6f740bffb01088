import { rate } from './report.js'

/** A hand-drawn SVG bar chart, so the docs need no charting library. */
export interface Bar {
  label: string
  value: number
  /** Reference points are drawn grey, scenarios blue. */
  reference: boolean
}

const escape = (text: string): string =>
  text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;')

/**
 * Horizontal bars, one per run. When the values span more than a factor of
 * 20 (the http-ceiling is often orders of magnitude above the rest), the
 * scale is logarithmic with a grid line per power of ten; otherwise the
 * small bars would vanish.
 */
export function barChart (title: string, bars: Bar[]): string {
  const width = 760
  const labelWidth = 130
  const plotWidth = width - labelWidth - 100
  const barHeight = 22
  const gap = 10
  const top = 44
  const plotHeight = bars.length * (barHeight + gap)
  const height = top + plotHeight + 50
  const values = bars.map((bar) => Math.max(bar.value, 0))
  const max = Math.max(1, ...values)
  const min = Math.max(1, Math.min(...values))
  const logarithmic = max / min > 20
  const decades = Math.max(1, Math.ceil(Math.log10(max)))
  const scale = (value: number): number => logarithmic
    ? (Math.log10(Math.max(value, 1)) / decades) * plotWidth
    : (value / max) * plotWidth

  const grid = logarithmic
    ? Array.from({ length: decades + 1 }, (_, power) => {
      const x = labelWidth + scale(10 ** power)
      return [
        `  <line x1="${x}" y1="${top - 6}" x2="${x}" y2="${top + plotHeight - gap + 6}" stroke="#e0e0e0"/>`,
        `  <text x="${x}" y="${top + plotHeight + 12}" text-anchor="middle" fill="#5f6368" font-size="11">${(10 ** power).toLocaleString('en-US')}</text>`
      ].join('\n')
    })
    : []

  const rows = bars.map((bar, index) => {
    const y = top + index * (barHeight + gap)
    const length = Math.max(2, Math.round(scale(bar.value)))
    const fill = bar.reference ? '#9aa0a6' : '#3b6fb6'
    return [
      `  <text x="${labelWidth - 10}" y="${y + barHeight / 2 + 5}" text-anchor="end">${escape(bar.label)}</text>`,
      `  <rect x="${labelWidth}" y="${y}" width="${length}" height="${barHeight}" rx="3" fill="${fill}"/>`,
      `  <text x="${labelWidth + length + 8}" y="${y + barHeight / 2 + 5}">${rate(bar.value)}</text>`
    ].join('\n')
  })

  const legend = `blue: identify scenarios; grey: reference points${logarithmic ? '; logarithmic scale' : ''}`
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="13">`,
    `  <rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `  <text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escape(title)}</text>`,
    ...grid,
    ...rows,
    `  <text x="${labelWidth}" y="${height - 10}" fill="#5f6368" font-size="11">${legend}</text>`,
    '</svg>',
    ''
  ].join('\n')
}
