// `npm run bench`: latchkey's benchmark. Every figure is printed next to a
// baseline measured in the same run on the same machine, and written with the
// machine's description to bench/RESULTS.md. See bench/README.md.
//
// LATCHKEY_BENCH_ONLY=verify,certificates,postgres,aws,audit runs a subset
// (RESULTS.md is then written to bench/RESULTS.partial.md).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { startCluster } from './lib/cluster.js';
import { PRODUCTION_NODE_FLAGS } from './lib/children.js';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const only = process.env.LATCHKEY_BENCH_ONLY?.split(',').map((s) => s.trim());
const wanted = (section) => !only || only.includes(section);
const log = (message) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);

function machine() {
  const cpuModel = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpus()[0]?.model ?? 'unknown';
  let nproc = String(cpus().length);
  try {
    nproc = execFileSync('nproc', { encoding: 'utf8' }).trim();
  } catch {
    // nproc missing: keep Node's count
  }
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  let cfssl = 'not installed';
  try {
    cfssl = execFileSync('cfssl', ['version'], { encoding: 'utf8' }).split('\n')[0].trim();
  } catch {
    // reported as not installed
  }
  return { nproc, cpuModel, node: process.version, date: new Date().toISOString(), load, cfssl };
}

const cell = (v) => (v === undefined || v === null || (typeof v === 'number' && Number.isNaN(v)) ? '' : String(v).replace(/\|/g, '\\|'));

/** A markdown table of rows, with only the columns some row has. */
function table(rows) {
  const columns = [
    ['name', 'Measurement'],
    ['value', 'Value'],
    ['unit', 'Unit'],
    ['ratio', 'Ratio to baseline'],
    ['p50', 'p50 ms'],
    ['p99', 'p99 ms'],
    ['peakMB', 'Peak RSS MB'],
    ['cpu', 'CPU ms per answer: server + PostgreSQL + load generator'],
    ['errors', 'Errors'],
    ['audit', 'Every grant audited'],
  ].filter(([key]) => rows.some((r) => r[key] !== undefined && r[key] !== ''));
  const lines = [`| ${columns.map(([, title]) => title).join(' | ')} |`, `| ${columns.map(() => '---').join(' | ')} |`];
  for (const row of rows) lines.push(`| ${columns.map(([key]) => cell(row[key])).join(' | ')} |`);
  return lines.join('\n');
}

function targetTable(targets) {
  const lines = ['| Target | Measured | Met |', '| --- | --- | --- |'];
  for (const t of targets) lines.push(`| ${cell(t.name)} | ${cell(t.measured)} | ${t.met === undefined ? 'not measured' : t.met ? 'yes' : '**no**'} |`);
  return lines.join('\n');
}

const sections = [];
const allTargets = [];
const started = Date.now();
const facts = machine();
log(`machine: ${facts.nproc} CPUs, ${facts.cpuModel}, node ${facts.node}, load ${facts.load}`);

log('starting embedded PostgreSQL');
const cluster = await startCluster();
try {
  if (wanted('verify')) {
    log('1. token verification');
    const { runVerifyBench } = await import('./verify.js');
    const { Database } = await import('../dist/store/database.js');
    const { migrate } = await import('../dist/store/migrate.js');
    const url = await cluster.createDatabase('bench_verify');
    const db = new Database(url, 2);
    await migrate(db);
    await db.close();
    const rows = await runVerifyBench({ databaseUrl: url, log });
    sections.push({
      title: '1. Token verification (cached key set)',
      about: 'latchkey\'s verifier (jose `jwtVerify` with the issuer\'s cached key set, plus issuer pick, claim checks and token hash) against Node\'s synchronous `crypto.verify` of the same token, one at a time. Ratio = ops/s divided by the `crypto.verify` rate of the same algorithm. consume:true burns the jti in PostgreSQL (`used_token_ids`, a durable commit), 16 verifications in flight.',
      rows,
    });
  }

  if (wanted('certificates')) {
    log('2. certificate grants');
    const { runCertificateBench } = await import('./certificates.js');
    const { rows, targets, notes } = await runCertificateBench({ cluster, log });
    allTargets.push(...targets);
    sections.push({
      title: '2. Certificate grants end to end over HTTP',
      about: 'The broker (dev mode, fresh database, generated CA of the given key type) in its own process; autocannon in another, 32 connections, POST /v1/grants with one P-256 CSR generated once. Each grant: token verification, jti burnt, policy, CSR check, signature by the CA, grant rows and two audit events committed (fsync on). cfssl signs the same CSR with the same CA files (`cfssl serve`, POST /api/v1/cfssl/sign). The ceiling row is a bare node:http server under the same load and tokens that only checks each token\'s ES256 signature and signs a TBS of the same size with the same CA key (Node\'s synchronous crypto), answering JSON of the broker\'s answer size: no claims, policy, CSR check or database, so no broker in Node on this machine can be faster. CPU per answer is the user + system time of each process (the server; PostgreSQL\'s whole process tree; the load generator) over the measured run divided by its 2xx answers: on a machine where everything shares the same cores, it shows where a grant\'s cost goes next to cfssl\'s. Peak RSS is VmHWM of the server process during the measured run; the broker runs with the Node flags of the Helm chart (`nodeOptions`: ' + PRODUCTION_NODE_FLAGS.join(' ') + ').',
      rows,
      notes,
    });
  }

  if (wanted('postgres')) {
    log('3. PostgreSQL grants');
    const { runPostgresBench } = await import('./postgres.js');
    const { rows, targets, notes } = await runPostgresBench({ cluster, log });
    allTargets.push(...targets);
    sections.push({
      title: '3. PostgreSQL grants',
      about: 'Target: database `demo` on the same embedded cluster (demo schema), SELECT on demo.orders. Load as in section 2. Expiry: grants with ttl 60 s issued 16 at a time with the real clock; pg_roles is polled every 100 ms, so delays are accurate to about 0.1 s.',
      rows,
      notes,
    });
  }

  if (wanted('aws')) {
    if (existsSync(here('./aws.js'))) {
      log('4. AWS grants');
      const { runAwsBench } = await import('./aws.js');
      const url = await cluster.createDatabase('bench_aws');
      const result = await runAwsBench({ databaseUrl: url });
      const rows = [];
      const { provider, grants, skeleton, durableCommit } = result ?? {};
      if (provider) {
        rows.push(
          { name: `AWS provider issue() (sequential, ${provider.iterations})`, value: provider.issue?.p50, unit: 'ms p50', p50: provider.issue?.p50, p99: provider.issue?.p99 },
          { name: 'raw STSClient AssumeRole, same parameters (baseline)', value: provider.assumeRole?.p50, unit: 'ms p50', p50: provider.assumeRole?.p50, p99: provider.assumeRole?.p99 },
          { name: 'provider overhead (issue - AssumeRole)', value: provider.overheadP50, unit: 'ms p50', p50: provider.overheadP50, p99: provider.overheadP99 },
        );
      }
      if (grants) {
        rows.push(
          { name: `AWS POST /v1/grants end to end (sequential, ${grants.iterations})`, value: grants.grant?.p50, unit: 'ms p50', p50: grants.grant?.p50, p99: grants.grant?.p99 },
          { name: 'STS round trip from an SDK client (baseline)', value: grants.stsRoundTrip?.p50, unit: 'ms p50', p50: grants.stsRoundTrip?.p50, p99: grants.stsRoundTrip?.p99 },
          { name: 'broker overhead (grant - STS round trip)', value: grants.overheadP50, unit: 'ms p50', p50: grants.overheadP50, p99: grants.overheadP99 },
          ...(grants.cpuMsPerGrant === undefined ? [] : [{ name: 'broker CPU time per sequential grant (utime+stime from /proc, all threads)', value: grants.cpuMsPerGrant, unit: 'ms' }]),
        );
        if (skeleton) {
          rows.push(
            { name: `floor: bare node:http server, jti burn (asynchronous commit) + durable intent commit + AssumeRole + durable result commit, nothing else (bench/lib/skeleton-grant.js; sequential, ${skeleton.iterations})`, value: skeleton.grant?.p50, unit: 'ms p50', p50: skeleton.grant?.p50, p99: skeleton.grant?.p99 },
            { name: 'STS round trip from an SDK client, alternated with the floor server (baseline)', value: skeleton.stsRoundTrip?.p50, unit: 'ms p50', p50: skeleton.stsRoundTrip?.p50, p99: skeleton.stsRoundTrip?.p99 },
            { name: 'floor overhead (floor server - STS round trip)', value: skeleton.overheadP50, unit: 'ms p50', p50: skeleton.overheadP50, p99: skeleton.overheadP99 },
            { name: 'floor server CPU time per sequential grant', value: skeleton.cpuMsPerGrant, unit: 'ms' },
          );
        }
        if (durableCommit) {
          rows.push({ name: `PostgreSQL durable commit round trip: one-row INSERT, synchronous_commit on, same database, from a pg client (sequential, ${durableCommit.iterations}); a grant waits for two (intent, result; the jti burn commits without waiting)`, value: durableCommit.p50, unit: 'ms p50', p50: durableCommit.p50, p99: durableCommit.p99 });
        }
        const floor = skeleton ? `; a bare server doing only the durable steps and AssumeRole: ${skeleton.overheadP50} ms` : durableCommit ? `; its two durable commits alone take at least 2 x ${durableCommit.p50} ms` : '';
        allTargets.push({ name: 'AWS grant overhead (minus STS round trip) < 2 ms p50', measured: `${grants.overheadP50} ms p50 end to end${floor}${provider ? `; provider alone ${provider.overheadP50} ms` : ''}`, met: grants.overheadP50 < 2 });
      }
      if (rows.length === 0) rows.push({ name: 'bench/aws.js result', value: JSON.stringify(result) });
      sections.push({ title: '4. AWS grants', about: 'From bench/aws.js (`runAwsBench()`): a local STS stand-in on 127.0.0.1; latencies of sequential requests in ms.', rows });
    } else {
      const note = existsSync(here('../test/support/sts-server.ts'))
        ? 'Skipped: the local STS stand-in is TypeScript (test/support/sts-server.ts) and bench/aws.js is not there yet.'
        : 'Skipped: no local STS stand-in exists.';
      sections.push({ title: '4. AWS grants', about: note, rows: [] });
      allTargets.push({ name: 'AWS grant overhead (minus STS round trip) < 2 ms p50', measured: 'skipped', met: undefined });
    }
  }

  if (wanted('audit')) {
    if (existsSync(here('./audit.js'))) {
      log('5. audit');
      const { runAuditBench } = await import('./audit.js');
      const rows = await runAuditBench({ databaseUrl: cluster.url, appendSeconds: 3 });
      const append = Math.max(...rows.filter((r) => r.name.startsWith('audit append')).map((r) => r.value));
      const verify = rows.find((r) => /offline verify, /.test(r.name));
      allTargets.push({ name: 'Audit appends >= 5,000 events/s', measured: `${append} events/s (best concurrency)`, met: append >= 5000 });
      if (verify) allTargets.push({ name: 'Verify 1,000,000 events < 10 s', measured: `${verify.value} s`, met: verify.value < 10 });
      sections.push({ title: '5. Audit', about: 'From bench/audit.js (`runAuditBench()`): appends to the embedded cluster (group commit, fsync on), offline verification of a synthetic signed export.', rows });
    } else {
      sections.push({ title: '5. Audit', about: 'Skipped: bench/audit.js is not there yet.', rows: [] });
    }
  }
} finally {
  await cluster.stop();
}

const seconds = Math.round((Date.now() - started) / 1000);
const report = [
  '# latchkey benchmark results',
  '',
  `Command: \`npm run bench\`${only ? ` (LATCHKEY_BENCH_ONLY=${only.join(',')})` : ''}, ${seconds} s.`,
  '',
  '| Machine | |',
  '| --- | --- |',
  `| CPUs (nproc) | ${facts.nproc} |`,
  `| CPU model | ${facts.cpuModel} |`,
  `| Node.js | ${facts.node} |`,
  `| cfssl | ${facts.cfssl} |`,
  `| Date | ${facts.date} |`,
  `| Load average at start | ${facts.load} |`,
  '',
  'The machine is shared and noisy: compare each figure with the baseline measured next to it in the same run, not with other runs.',
  '',
  '## Targets',
  '',
  targetTable(allTargets),
  '',
  ...sections.flatMap((s) => [`## ${s.title}`, '', s.about, '', ...(s.rows.length ? [table(s.rows), ''] : []), ...(s.notes?.length ? [...s.notes.map((n) => `- ${n}`), ''] : [])]),
].join('\n');

const out = here(only ? './RESULTS.partial.md' : './RESULTS.md');
writeFileSync(out, report);
console.log(report);
log(`written to ${out}`);
