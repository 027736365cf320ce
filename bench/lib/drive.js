// Driving a broker's POST /v1/grants with single-use tokens from a separate process.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runLoadProcess } from './children.js';
import { cpuMsOf, cpuMsOfTree, memoryOf, resetPeakMemory } from './stats.js';

/** Concurrent connections of every load run (broker and cfssl alike). */
export const CONNECTIONS = 32;
/** Longest measured run, seconds. */
export const RUN_SECONDS = 6;
/** Most tokens minted for one run. */
export const MAX_TOKENS = 20_000;
/**
 * Fewest tokens minted for a measured run. The warm-up's rate is only an
 * estimate: it runs on cold code, and measured runs have gone 2.7x faster
 * (296/s warm-up, over 4,000 tokens in 6 s), so the floor covers 1,300/s.
 */
const MIN_TOKENS = 8_000;
/** Tokens of the warm-up run. */
const WARM_TOKENS = 600;

/** Mints `count` single-use dev tokens into a file (one per line) for the load generator. */
export async function mintTokens(issuer, count, file) {
  const tokens = [];
  for (let i = 0; i < count; i += 1) tokens.push(await issuer.mint({ team: 'bench', sub: `svc-${i % 100}` }, { ttlSeconds: 3600 }));
  writeFileSync(file, `${tokens.join('\n')}\n`);
}

/**
 * CPU milliseconds per 2xx answer of a run, by process: the server, PostgreSQL
 * (when it has one) and the load generator; `measureCpu(pids)` before the run,
 * then `.per(run)` after it.
 */
export function measureCpu({ serverPid, postgresPid }) {
  const server = cpuMsOf(serverPid);
  const postgres = postgresPid ? cpuMsOfTree(postgresPid) : NaN;
  return {
    per(run) {
      const each = (ms) => ms / run.ok;
      return {
        server: each(cpuMsOf(serverPid) - server),
        ...(postgresPid ? { postgres: each(cpuMsOfTree(postgresPid) - postgres) } : {}),
        loadGenerator: each(run.cpuMs),
      };
    },
  };
}

/** CPU ms per answer of every process together. */
export function cpuTotal(cpu) {
  return cpu.server + (cpu.postgres ?? 0) + cpu.loadGenerator;
}

/** CPU per answer as a table cell: "server + PostgreSQL + load generator = total". */
export function cpuCell(cpu) {
  if (!cpu) return '';
  const total = cpuTotal(cpu);
  return `${cpu.server.toFixed(2)} + ${cpu.postgres === undefined ? 'none' : cpu.postgres.toFixed(2)} + ${cpu.loadGenerator.toFixed(2)} = ${total.toFixed(2)}`;
}

/**
 * Runs token-driven load against a broker: warm-up, sized run, peak RSS of the
 * broker, and CPU per grant of the broker, PostgreSQL (`postgresPid`, the
 * postmaster) and the load generator. `runTokens` fixes the measured run's
 * token count, for a server faster than its warm-up can tell.
 */
export async function driveBroker({ broker, issuer, body, dir, label, log, postgresPid, runTokens }) {
  const url = `${broker.url}/v1/grants`;
  const warmFile = join(dir, `${label}-warm.tokens`);
  await mintTokens(issuer, WARM_TOKENS, warmFile);
  const warm = await runLoadProcess({ url, body, tokensFile: warmFile, connections: CONNECTIONS, seconds: 4 });
  if (warm.ok === 0) throw new Error(`${label}: warm-up issued nothing (${JSON.stringify(warm.statusCodes)})`);
  // Enough tokens that the measured run ends at its time bound, not when the tokens run out:
  // a run cut short by its tokens is mostly ramp-up, and its rate is the token count over a few seconds.
  const count = runTokens ?? Math.min(MAX_TOKENS, Math.max(MIN_TOKENS, Math.ceil(warm.rate * RUN_SECONDS * 4)));
  const file = join(dir, `${label}.tokens`);
  log(`${label}: minting ${count} tokens (warm-up ${Math.round(warm.rate)}/s)`);
  await mintTokens(issuer, count, file);
  resetPeakMemory(broker.pid);
  log(`${label}: load`);
  const cpu = measureCpu({ serverPid: broker.pid, postgresPid });
  const run = await runLoadProcess({ url, body, tokensFile: file, connections: CONNECTIONS, seconds: RUN_SECONDS });
  const cpuPerGrant = cpu.per(run);
  if (run.ok + run.non2xx + run.errors >= count) {
    throw new Error(`${label}: the ${count} tokens ran out before the ${RUN_SECONDS} s run ended; the rate would be the token count over a shortened run`);
  }
  // Requests the generator abandoned at its time bound are still being served: let them finish
  // before anyone closes the broker, so the audit check sees steady state, not shutdown.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  return { ...run, cpu: cpuPerGrant, peakMB: memoryOf(broker.pid).peakMB, warmOk: warm.ok };
}

