// Audit benchmark: append throughput (group commit, N concurrent appenders)
// against a real PostgreSQL, and offline verification of 1,000,000 events.
// Runs from the build (dist/). `node bench/audit.js` prints the figures;
// `runAuditBench()` returns them for bench/run.js.
import { generateKeyPairSync } from 'node:crypto';
import { createWriteStream, createReadStream, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { once } from 'node:events';
import canonicalize from 'canonicalize';

const dist = new URL('../dist/', import.meta.url);
const load = (path) => import(new URL(path, dist).href);

function sampleEvent(i) {
  return {
    type: i % 5 === 0 ? 'grant.denied' : 'grant.issued',
    outcome: i % 5 === 0 ? 'denied' : 'success',
    requestId: `req-${i}`,
    clientAddress: '127.0.0.1',
    issuer: 'https://token.actions.githubusercontent.com',
    subject: `repo:acme/app-${i % 50}:ref:refs/heads/main`,
    claims: { repository: `acme/app-${i % 50}`, ref: 'refs/heads/main', workflow: 'deploy', repository_id: String(1000 + (i % 50)) },
    tokenHash: 'a'.repeat(64),
    rule: 'deploy-main',
    kind: 'aws',
    target: 'prod-deploy',
    scope: { actions: ['s3:PutObject'], resources: ['arn:aws:s3:::acme-artifacts/*'] },
    grantId: '00000000-0000-4000-8000-' + String(i).padStart(12, '0'),
    providerRef: `ASIA${String(i).padStart(16, '0')}`,
    expiresAt: '2026-01-01T00:15:00.000Z',
  };
}

/** Writes an export of `count` chained events and its signed checkpoint; returns the paths. */
export async function writeSyntheticExport(dir, count) {
  const { hashLeaf, TreeHasher } = await load('audit/merkle.js');
  const { signCheckpoint, verifierKey } = await load('audit/checkpoint.js');
  const { privateKey } = generateKeyPairSync('ed25519');
  const { signingKeyFromPem } = await load('audit/checkpoint.js');
  const key = signingKeyFromPem(privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const exportPath = join(dir, 'export.jsonl');
  const out = createWriteStream(exportPath);
  const tree = new TreeHasher();
  let prev;
  let chunk = '';
  for (let seq = 0; seq < count; seq += 1) {
    const record = { ...sampleEvent(seq), seq, time: new Date(Date.UTC(2026, 0, 1) + seq * 10).toISOString(), ...(prev ? { prev } : {}) };
    const line = canonicalize(record);
    const hash = hashLeaf(Buffer.from(line, 'utf8'));
    tree.addLeafHash(hash);
    prev = hash.toString('base64');
    chunk += `${line}\n`;
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
  const origin = 'bench.example/audit';
  const note = signCheckpoint({ origin, treeSize: count, rootHash: tree.root(), extensions: [] }, key, origin);
  return { exportPath, note, key: verifierKey(origin, key) };
}

async function benchVerify(count) {
  const { verifyAuditExport } = await load('audit/verify.js');
  const dir = join(tmpdir(), `latchkey-bench-audit-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  try {
    const { exportPath, note, key } = await writeSyntheticExport(dir, count);
    const started = process.hrtime.bigint();
    const report = await verifyAuditExport({ events: createReadStream(exportPath, { highWaterMark: 1 << 20 }), checkpoint: note, key });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (!report.ok) throw new Error(`benchmark export did not verify: ${report.problem?.message}`);
    return seconds;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function benchAppend(databaseUrl, { appenders, seconds }) {
  const { Database } = await load('store/database.js');
  const { migrate } = await load('store/migrate.js');
  const { AuditLog } = await load('audit/log.js');
  const pg = (await import('pg')).default;
  const name = `latchkey_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name}`);
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(databaseUrl);
  url.pathname = `/${name}`;
  const db = new Database(url.toString(), 4);
  try {
    await migrate(db);
    const log = new AuditLog(db, { now: () => new Date() });
    let committed = 0;
    const deadline = Date.now() + seconds * 1000;
    const started = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: appenders }, async (_, worker) => {
        for (let i = worker; Date.now() < deadline; i += appenders) {
          await log.append(sampleEvent(i));
          committed += 1;
        }
      }),
    );
    const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
    await log.close();
    return committed / elapsed;
  } finally {
    await db.close();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

/**
 * The audit figures for `npm run bench`. Appends go to LATCHKEY_BENCH_DATABASE_URL
 * (a superuser URL; default the local server at 127.0.0.1:5432).
 */
export async function runAuditBench(options = {}) {
  const databaseUrl = options.databaseUrl ?? process.env.LATCHKEY_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const results = [];
  for (const appenders of options.appenders ?? [1, 16, 256]) {
    const rate = await benchAppend(databaseUrl, { appenders, seconds: options.appendSeconds ?? 5 });
    results.push({ name: `audit append, ${appenders} concurrent appender${appenders === 1 ? '' : 's'}`, value: Math.round(rate), unit: 'events/s' });
  }
  const count = options.verifyEvents ?? 1_000_000;
  const seconds = await benchVerify(count);
  results.push({ name: `audit offline verify, ${count.toLocaleString('en')} events`, value: Number(seconds.toFixed(2)), unit: 's' });
  results.push({ name: 'audit offline verify rate', value: Math.round(count / seconds), unit: 'events/s' });
  return results;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const results = await runAuditBench();
  for (const r of results) console.log(`${r.name.padEnd(48)} ${String(r.value).padStart(12)} ${r.unit}`);
}
