/** A hand-drawn SVG bar chart, so the docs need no charting library. */
export interface Bar {
  label: string
  value: number
  /** Reference points are drawn grey, scenarios blue. */
  reference: boolean
}

const escape = (text: string): string =>
  text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;')

export function barChart (title: string, bars: Bar[]): string {
  const width = 760
  const labelWidth = 130
  const valueWidth = 80
  const barHeight = 22
  const gap = 10
  const top = 44
  const plotWidth = width - labelWidth - valueWidth - 20
  const height = top + bars.length * (barHeight + gap) + 28
  const max = Math.max(1, ...bars.map((bar) => bar.value))

  const rows = bars.map((bar, index) => {
    const y = top + index * (barHeight + gap)
    const length = Math.max(1, Math.round((bar.value / max) * plotWidth))
    const fill = bar.reference ? '#9aa0a6' : '#3b6fb6'
    return [
      `  <text x="${labelWidth - 10}" y="${y + barHeight / 2 + 5}" text-anchor="end">${escape(bar.label)}</text>`,
      `  <rect x="${labelWidth}" y="${y}" width="${length}" height="${barHeight}" rx="3" fill="${fill}"/>`,
      `  <text x="${labelWidth + length + 8}" y="${y + barHeight / 2 + 5}">${Math.round(bar.value).toLocaleString('en-US')}</text>`
    ].join('\n')
  })

  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="13">`,
    `  <rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `  <text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escape(title)}</text>`,
    ...rows,
    `  <text x="${labelWidth}" y="${height - 10}" fill="#5f6368" font-size="11">blue: identify scenarios; grey: reference points (db-floor: driver only; http-ceiling: no database)</text>`,
    '</svg>',
    ''
  ].join('\n')
}
