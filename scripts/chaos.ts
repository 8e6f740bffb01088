import { parseArgs } from 'node:util'
import { formatReport, runChaos } from '../tools/chaos.js'

/** `npm run chaos`: kills parts of the fleet under load and reports what was lost (docs/reliability.md). */
async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '20' },
      kills: { type: 'string', default: '100' },
      'replica-kills': { type: 'string' },
      'redis-stops': { type: 'string' },
      workers: { type: 'string', default: '8' }
    }
  })
  const databaseKills = Number(values.kills)
  const report = await runChaos({
    seconds: Number(values.minutes) * 60,
    // Half of the kills to each part.
    postgresKills: Math.ceil(databaseKills / 2),
    gatewayKills: Math.floor(databaseKills / 2),
    replicaKills: Number(values['replica-kills'] ?? Math.max(1, Math.round(databaseKills / 10))),
    redisStops: Number(values['redis-stops'] ?? Math.max(1, Math.round(databaseKills / 20))),
    workers: Number(values.workers),
    log: (line) => { process.stderr.write(`${line}\n`) }
  })
  process.stdout.write(`${formatReport(report)}\n`)
  for (const [group, count] of Object.entries(report.failureGroups)) process.stdout.write(`failures: ${String(count)} × ${group}\n`)
  for (const failure of report.failures.slice(0, 40)) process.stdout.write(`failure: ${failure}\n`)
  for (const lost of report.lostAnswers.slice(0, 50)) process.stdout.write(`lost: ${lost}\n`)
  if (report.failures.length > 0 || report.lost > 0) process.exitCode = 1
}

await main()
