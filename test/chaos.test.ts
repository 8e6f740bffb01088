import { expect, it } from 'vitest'
import { formatReport, runChaos } from '../tools/chaos.js'

/**
 * CI's short chaos run (`npm run chaos` runs the long one, docs/reliability.md):
 * two replicas under identify load while PostgreSQL is SIGKILLed twice under
 * a live gateway, the gateway twice, one replica once and Redis once. No 500,
 * no hang, a 503 for each database kill within 5 s, no acknowledged call
 * lost, flat memory of the replica never killed.
 */
it('survives PostgreSQL, gateway, replica and Redis kills under load without losing an acknowledged call', async () => {
  const report = await runChaos({ seconds: 20, postgresKills: 2, gatewayKills: 2, replicaKills: 1, redisStops: 1, workers: 6, log: () => {} })
  const table = formatReport(report)
  expect(report.failures, table).toStrictEqual([])
  expect(report.lostAnswers, table).toStrictEqual([])
  expect([report.postgresKills, report.gatewayKills, report.replicaKills, report.redisStops], table).toStrictEqual([2, 2, 1, 1])
  // The run means something only if calls were acknowledged before, between and after the kills.
  expect(report.acknowledged, table).toBeGreaterThan(50)
}, 300_000)
