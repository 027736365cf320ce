// Section 3: PostgreSQL grants against a local embedded cluster: grants/s and
// latency under load, then the expiry-to-gone delay: N grants with the
// shortest TTL (60 s), and for each the time from its expires_at (as the
// broker reported it) until its role is no longer in pg_roles.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startBrokerProcess } from './lib/children.js';
import { cpuCell, driveBroker } from './lib/drive.js';
import { percentile, round } from './lib/stats.js';

const dist = (path) => import(new URL(`../dist/${path}`, import.meta.url).href);

const ADMIN_URL_ENV = 'LATCHKEY_BENCH_PG_ADMIN_URL';
const EXPIRY_GRANTS = 200;
const POLL_MS = 100;

function brokerConfig() {
  return {
    server: { log_level: 'silent' },
    issuers: [{ name: 'dev', preset: 'dev', audience: 'latchkey', max_token_age: '1h' }],
    targets: {
      'bench-db': {
        kind: 'postgres',
        admin_url_env: ADMIN_URL_ENV,
        databases: ['demo'],
        sslmode: 'disable',
        tables: ['demo.*'],
        privileges: ['SELECT'],
        connection_limit: 5,
      },
    },
    rules: [
      {
        name: 'bench-reads-orders',
        issuer: 'dev',
        when: { team: { glob: '*' } },
        allow: [{ kind: 'postgres', target: 'bench-db', databases: ['demo'], tables: ['demo.orders'], privileges: ['SELECT'], max_ttl: '15m' }],
      },
    ],
  };
}

/** Issues `count` 60-second grants, 16 at a time; resolves with [{ role, expiresAt }]. */
async function issueShortGrants(broker, issuer, body, count) {
  const out = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < count) {
        next += 1;
        const token = await issuer.mint({ team: 'bench', sub: `expiry-${next}` }, { ttlSeconds: 600 });
        const res = await fetch(`${broker.url}/v1/grants`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body });
        const grant = await res.json();
        if (res.status !== 201) throw new Error(`a 60 s postgres grant failed: ${res.status} ${JSON.stringify(grant)}`);
        out.push({ role: grant.providerRef, expiresAt: Date.parse(grant.expiresAt) });
      }
    }),
  );
  return out;
}

/** Polls pg_roles until every role is gone (or the deadline); returns per-role delays after expiry in ms. */
async function watchRolesGo(adminUrl, grants, deadline) {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  const remaining = new Map(grants.map((g) => [g.role, g.expiresAt]));
  const delays = [];
  let early = 0;
  try {
    while (remaining.size > 0 && Date.now() < deadline) {
      const { rows } = await client.query('SELECT rolname FROM pg_roles WHERE rolname = ANY($1)', [[...remaining.keys()]]);
      const present = new Set(rows.map((r) => r.rolname));
      const now = Date.now();
      for (const [role, expiresAt] of remaining) {
        if (present.has(role)) continue;
        if (now < expiresAt) early += 1;
        delays.push(now - expiresAt);
        remaining.delete(role);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    await client.end();
  }
  return { delays, notGone: remaining.size, early };
}

/** PostgreSQL grant figures; `cluster` is lib/cluster.js's. Returns `{ rows, targets, notes }`. */
export async function runPostgresBench({ cluster, log = () => {} }) {
  const { DevIssuer } = await dist('identity/dev-issuer.js');
  const { systemClock } = await dist('clock.js');
  const { seedDemoSchema } = await dist('providers/postgres/demo.js');
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-bench-pg-grants-'));
  const rows = [];
  const targets = [];
  const notes = [];
  try {
    const demoUrl = await cluster.createDatabase('demo');
    await seedDemoSchema(demoUrl);
    const databaseUrl = await cluster.createDatabase('bench_pg_state');
    log('postgres: starting broker');
    const broker = await startBrokerProcess({ config: brokerConfig(), databaseUrl, env: { [ADMIN_URL_ENV]: cluster.url } });
    try {
      const issuer = await DevIssuer.load(broker.dataDir, `${broker.url}/dev/oidc`, systemClock);
      const body = JSON.stringify({ kind: 'postgres', target: 'bench-db', scope: { database: 'demo', tables: ['demo.orders'] } });
      const load = await driveBroker({ broker, issuer, body, dir, label: 'postgres', log, postgresPid: cluster.pid });
      rows.push({ name: 'PostgreSQL grants: POST /v1/grants (CREATE ROLE, GRANT, audit), fresh token each', value: round(load.rate), unit: 'grants/s', p50: load.p50, p99: load.p99, peakMB: round(load.peakMB), cpu: cpuCell(load.cpu), errors: load.non2xx + load.errors });
      targets.push({ name: 'PostgreSQL grants >= 200/s', measured: `${round(load.rate)}/s`, met: load.rate >= 200 });

      const shortBody = JSON.stringify({ kind: 'postgres', target: 'bench-db', scope: { database: 'demo', tables: ['demo.orders'] }, ttl: '60s' });
      log(`postgres: issuing ${EXPIRY_GRANTS} grants of 60 s, then waiting for them to expire`);
      const short = await issueShortGrants(broker, issuer, shortBody, EXPIRY_GRANTS);
      const lastExpiry = Math.max(...short.map((g) => g.expiresAt));
      const watched = await watchRolesGo(cluster.url, short, lastExpiry + 30_000);
      const p50 = percentile(watched.delays, 50);
      const p99 = percentile(watched.delays, 99);
      rows.push({
        name: `PostgreSQL expiry: expires_at -> role gone from pg_roles, ${EXPIRY_GRANTS} grants of 60 s (poll ${POLL_MS} ms)`,
        value: `p50 ${round(p50 / 1000)} s`,
        unit: `p99 ${round(p99 / 1000)} s, max ${round(Math.max(...watched.delays) / 1000)} s`,
        errors: watched.notGone + watched.early,
      });
      if (watched.notGone) notes.push(`${watched.notGone} of ${EXPIRY_GRANTS} roles were still present 30 s after the last expiry.`);
      if (watched.early) notes.push(`${watched.early} roles disappeared before their expires_at.`);
      targets.push({ name: 'PostgreSQL expiry-to-gone p99 <= 5 s', measured: `${round(p99 / 1000)} s (${watched.notGone} not gone)`, met: p99 <= 5000 && watched.notGone === 0 });
    } finally {
      await broker.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { rows, targets, notes };
}
