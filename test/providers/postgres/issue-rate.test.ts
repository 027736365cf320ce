import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { describe, expect, inject, it } from 'vitest';
import { LOCAL_PG15_URL, setUpProviderFixture, unreachableReason } from './servers.js';

/**
 * Not a test: a measurement, run on demand with
 *   LATCHKEY_MEASURE_PG_RATE=1 npx vitest run test/providers/postgres/issue-rate.test.ts
 * It prints issue() and revoke() rates (the whole provider path: scope
 * check, SCRAM, catalog check, one transaction) and asserts nothing about time.
 */
const GRANTS = Number(process.env['LATCHKEY_PG_RATE_GRANTS'] ?? 1000);
const ITERATIONS = Number(process.env['LATCHKEY_PG_RATE_ITERATIONS'] ?? 4096);
const IN_FLIGHT = Number(process.env['LATCHKEY_PG_RATE_IN_FLIGHT'] ?? 8);

/** CPU seconds (user + system) of every running `postgres` process, from /proc. */
function serverCpuSeconds(): number {
  const ticks = 100; // USER_HZ on Linux
  let total = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (comm !== 'postgres') continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / ticks;
    } catch {
      // The process ended meanwhile.
    }
  }
  return total;
}

async function runPool<T>(items: number, inFlight: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < items) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

describe.runIf(process.env['LATCHKEY_MEASURE_PG_RATE'])('PostgreSQL grant rate', () => {
  it.for<[server: string, url: () => string]>([
    ['the machine PostgreSQL 15', () => LOCAL_PG15_URL],
    ['embedded PostgreSQL 18', () => inject('postgresUrl')],
  ])('on %s', { timeout: 300_000 }, async ([label, url], ctx) => {
    const reason = await unreachableReason(url());
    if (reason) ctx.skip(reason);
    const fx = await setUpProviderFixture(url(), { scram_iterations: ITERATIONS });
    try {
      await fx.issue({ database: fx.database, tables: ['demo.orders'] }); // warm the pool
      const latencies: number[] = [];
      const serverCpuBefore = serverCpuSeconds();
      const nodeCpuBefore = process.cpuUsage();
      const started = performance.now();
      const issued = await runPool(GRANTS, IN_FLIGHT, async () => {
        const t = performance.now();
        const result = await fx.issue({ database: fx.database, tables: ['demo.orders', 'demo.customers'] });
        latencies.push(performance.now() - t);
        return result.providerRef;
      });
      const issueSeconds = (performance.now() - started) / 1000;
      const nodeCpu = process.cpuUsage(nodeCpuBefore);
      const nodeCpuMs = (nodeCpu.user + nodeCpu.system) / 1000 / GRANTS;
      const serverCpuMs = ((serverCpuSeconds() - serverCpuBefore) * 1000) / GRANTS;
      latencies.sort((a, b) => a - b);
      const revokeStarted = performance.now();
      await runPool(issued.length, IN_FLIGHT, (i) => fx.provider.revoke({ grantId: 'g', providerRef: issued[i]!, reason: 'expired' }));
      const revokeSeconds = (performance.now() - revokeStarted) / 1000;
      console.log(
        `${label}: ${GRANTS} issue() with ${IN_FLIGHT} in flight, ${ITERATIONS} SCRAM iterations: ${(GRANTS / issueSeconds).toFixed(0)} grants/s, ` +
          `p50 ${latencies[Math.floor(latencies.length * 0.5)]!.toFixed(1)} ms, p99 ${latencies[Math.floor(latencies.length * 0.99)]!.toFixed(1)} ms; ` +
          `revoke(): ${(GRANTS / revokeSeconds).toFixed(0)} roles/s; ` +
          `CPU per grant: broker ${nodeCpuMs.toFixed(2)} ms + server ${serverCpuMs.toFixed(2)} ms (load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores)`,
      );
      expect(issued).toHaveLength(GRANTS);
    } finally {
      await fx.teardown();
    }
  });
});
