// Section 2: certificate grants end to end over HTTP (verify, policy, sign,
// durable audit commit) from a separate load-generator process, next to Node's
// crypto producing the same CA signatures alone and cfssl signing the same CSR
// with the same CA (same key file) in the same run.
import { execFileSync, spawn } from 'node:child_process';
import { createPrivateKey, sign, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import pg from 'pg';
import { freePort } from './lib/cluster.js';
import { runLoadProcess, startBrokerProcess, startCryptoFloorProcess } from './lib/children.js';
import { CONNECTIONS, cpuCell, cpuTotal, driveBroker, measureCpu, RUN_SECONDS } from './lib/drive.js';
import { memoryOf, opsPerSecondSync, resetPeakMemory, round } from './lib/stats.js';

const dist = (path) => import(new URL(`../dist/${path}`, import.meta.url).href);


/** Whether a command is on PATH. */
export function hasCommand(name) {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A P-256 leaf key and its CSR (PEM), made once with openssl. */
export function makeCsr(dir) {
  const keyFile = join(dir, 'leaf.key');
  execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile]);
  return execFileSync('openssl', ['req', '-new', '-key', keyFile, '-subj', '/CN=bench-leaf', '-sha256'], { encoding: 'utf8' });
}

export function brokerConfig(caKeyType, singleUseJti) {
  return {
    server: { log_level: 'silent' },
    issuers: [{ name: 'dev', preset: 'dev', audience: 'latchkey', max_token_age: '1h', single_use_jti: singleUseJti }],
    targets: { mesh: { kind: 'certificate', trust_domain: 'bench.example', ca_key_type: caKeyType } },
    rules: [
      {
        name: 'bench-certificates',
        issuer: 'dev',
        when: { team: { glob: '*' } },
        allow: [{ kind: 'certificate', target: 'mesh', spiffe_id: 'spiffe://{trust_domain}/team/{team}/{sub}', usages: ['client_auth'], max_ttl: '15m' }],
      },
    ],
  };
}

/** The TBSCertificate length of a certificate (what the CA signs), read with forge's ASN.1 parser. */
function tbsLength(certPem) {
  const der = new X509Certificate(certPem).raw;
  const outer = forge.asn1.fromDer(forge.util.createBuffer(der.toString('binary')));
  return forge.asn1.toDer(outer.value[0]).length();
}

/**
 * After a run: every active grant has its grant.issued audit row, and there are
 * at least as many as 201 answers. Also the commits per grant, from PostgreSQL's
 * own counters (read once the broker is gone, so they are flushed).
 */
async function auditFacts(databaseUrl) {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const r = await client.query(`SELECT
        (SELECT count(*)::int FROM audit_events WHERE type = 'grant.issued') AS issued,
        (SELECT count(*)::int FROM grants g WHERE status = 'active'
           AND NOT EXISTS (SELECT 1 FROM audit_events a WHERE a.grant_id = g.id AND a.type = 'grant.issued')) AS unaudited,
        (SELECT count(*)::int FROM grants) AS grants,
        (SELECT xact_commit::int FROM pg_stat_database WHERE datname = current_database()) AS commits`);
    return r.rows[0];
  } finally {
    await client.end();
  }
}

/** Runs with one token for every request (issuer configured with single_use_jti: false). */
async function driveBrokerReusedToken({ broker, issuer, body, log, label }) {
  const token = await issuer.mint({ team: 'bench', sub: 'svc-reused' }, { ttlSeconds: 3600 });
  const url = `${broker.url}/v1/grants`;
  const headers = { authorization: `Bearer ${token}` };
  await runLoadProcess({ url, body, headers, connections: CONNECTIONS, seconds: 1 });
  resetPeakMemory(broker.pid);
  log(`${label}: load`);
  const run = await runLoadProcess({ url, body, headers, connections: CONNECTIONS, seconds: RUN_SECONDS });
  return { ...run, peakMB: memoryOf(broker.pid).peakMB };
}

/** cfssl serve with the given CA files; drives /api/v1/cfssl/sign with the CSR. */
async function driveCfssl({ caCert, caKey, csr, dir, label, log }) {
  const port = await freePort();
  const configFile = join(dir, `${label}-cfssl.json`);
  writeFileSync(configFile, JSON.stringify({ signing: { default: { expiry: '15m', usages: ['digital signature', 'client auth'] } } }));
  // -loglevel 4: critical only, so per-request logging does not slow it down.
  const server = spawn('cfssl', ['serve', '-address', '127.0.0.1', '-port', String(port), '-ca', caCert, '-ca-key', caKey, '-config', configFile, '-loglevel', '4'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  server.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  try {
    const url = `http://127.0.0.1:${port}/api/v1/cfssl/sign`;
    const body = JSON.stringify({ certificate_request: csr });
    // Wait until it answers, and check it really signs.
    let answer;
    for (let i = 0; i < 100; i += 1) {
      answer = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json' } }).then((r) => r.json(), () => undefined);
      if (answer) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!answer?.success) throw new Error(`cfssl did not sign: ${JSON.stringify(answer?.errors ?? answer)} ${stderr}`);
    new X509Certificate(answer.result.certificate);
    await runLoadProcess({ url, body, connections: CONNECTIONS, seconds: 1 });
    log(`${label}: cfssl load`);
    const cpu = measureCpu({ serverPid: server.pid });
    const run = await runLoadProcess({ url, body, connections: CONNECTIONS, seconds: RUN_SECONDS });
    return { ...run, cpu: cpu.per(run), peakMB: memoryOf(server.pid).peakMB };
  } finally {
    server.kill('SIGTERM');
  }
}

/**
 * Certificate grant figures for an ECDSA P-256 and an RSA-2048 CA. `cluster`
 * (lib/cluster.js) holds a fresh database per broker. Returns
 * `{ rows, targets }`: table rows and the pass/fail of each target.
 */
export async function runCertificateBench({ cluster, log = () => {} }) {
  const { DevIssuer } = await dist('identity/dev-issuer.js');
  const { systemClock } = await dist('clock.js');
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-bench-certs-'));
  const haveCfssl = hasCommand('cfssl');
  const rows = [];
  const targets = [];
  const notes = [];
  if (!haveCfssl) notes.push('cfssl is not installed (Debian: `apt-get install -y golang-cfssl`): the cfssl baseline was skipped.');
  try {
    const csr = makeCsr(dir);
    const body = JSON.stringify({ kind: 'certificate', target: 'mesh', scope: { csr } });
    for (const caKeyType of ['ec-p256', 'rsa-2048']) {
      const label = `cert-${caKeyType}`;
      const databaseUrl = await cluster.createDatabase(`bench_${caKeyType.replace('-', '_')}`);
      log(`${label}: starting broker`);
      const broker = await startBrokerProcess({ config: brokerConfig(caKeyType, true), databaseUrl });
      let single;
      let tbs;
      let answerBytes;
      let devIssuer;
      const caCert = join(broker.dataDir, 'ca', 'mesh', 'ca.crt');
      const caKey = join(broker.dataDir, 'ca', 'mesh', 'ca.key');
      const caFiles = join(dir, label);
      try {
        const issuer = await DevIssuer.load(broker.dataDir, `${broker.url}/dev/oidc`, systemClock);
        devIssuer = issuer;
        // One grant by hand: it must work, and its certificate gives the TBS size to sign in the baseline.
        const res = await fetch(`${broker.url}/v1/grants`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${await issuer.mint({ team: 'bench' })}` }, body });
        const answer = await res.text();
        answerBytes = Buffer.byteLength(answer);
        const granted = JSON.parse(answer);
        if (res.status !== 201) throw new Error(`${label}: a single grant failed: ${res.status} ${JSON.stringify(granted)}`);
        tbs = tbsLength(granted.credential.certificate);
        single = await driveBroker({ broker, issuer, body, dir, label, log, postgresPid: cluster.pid });
        // Keep the CA files for cfssl: the broker's data folder goes with it.
        mkdirSync(caFiles, { recursive: true });
        writeFileSync(join(caFiles, 'ca.crt'), readFileSync(caCert));
        writeFileSync(join(caFiles, 'ca.key'), readFileSync(caKey), { mode: 0o600 });
      } finally {
        await broker.close();
      }
      const facts = await auditFacts(databaseUrl);
      const answered = single.ok + single.warmOk + 1;
      const auditNote =
        facts.unaudited === 0 && facts.issued >= answered
          ? `yes (${facts.issued} grant.issued rows; ~${(facts.commits / facts.grants).toFixed(1)} commits/grant)`
          : `NO: ${facts.unaudited} active grants without grant.issued, ${facts.issued} rows for ${answered} 201s`;

      log(`${label}: starting broker (single_use_jti: false)`);
      const reuseUrl = await cluster.createDatabase(`bench_${caKeyType.replace('-', '_')}_reuse`);
      const reuseBroker = await startBrokerProcess({ config: brokerConfig(caKeyType, false), databaseUrl: reuseUrl });
      let reused;
      try {
        const issuer = await DevIssuer.load(reuseBroker.dataDir, `${reuseBroker.url}/dev/oidc`, systemClock);
        reused = await driveBrokerReusedToken({ broker: reuseBroker, issuer, body, log, label: `${label}-reuse` });
      } finally {
        await reuseBroker.close();
      }

      // Node's crypto alone: the CA signature over a TBS of the same size, one core, synchronous.
      log(`${label}: crypto-only signing`);
      const key = createPrivateKey(readFileSync(join(caFiles, 'ca.key')));
      const tbsBuffer = Buffer.alloc(tbs, 0x5a);
      const cryptoRate = opsPerSecondSync(() => sign('sha256', tbsBuffer, key), { minMs: 2000, warmup: 50 });

      let cfssl;
      if (haveCfssl) cfssl = await driveCfssl({ caCert: join(caFiles, 'ca.crt'), caKey: join(caFiles, 'ca.key'), csr, dir, label, log });

      // The ceiling: a server doing only the token check and the CA signature, same load, same tokens.
      log(`${label}: crypto floor server`);
      const floorServer = await startCryptoFloorProcess({ issuerJwk: devIssuer.jwks().keys[0], caKeyPem: readFileSync(join(caFiles, 'ca.key'), 'utf8'), tbsBytes: tbs, answerBytes });
      let floor;
      try {
        // Its warm-up runs out of tokens in well under a second, so its rate says little: mint for 10,000/s.
        floor = await driveBroker({ broker: floorServer, issuer: devIssuer, body, dir, label: `${label}-floor`, log, runTokens: 10_000 * RUN_SECONDS });
      } finally {
        await floorServer.close();
      }

      // Diagnostic, not a result: the same run with commits not waiting for the WAL flush,
      // to show how much of the grant's cost is durable commits on this disk.
      let noSync;
      if (caKeyType === 'ec-p256') {
        const noSyncUrl = await cluster.createDatabase('bench_ec_p256_nosync');
        const admin = new pg.Client({ connectionString: noSyncUrl });
        await admin.connect();
        await admin.query('ALTER DATABASE bench_ec_p256_nosync SET synchronous_commit = off');
        await admin.end();
        log(`${label}: starting broker (diagnostic: synchronous_commit off)`);
        const diagBroker = await startBrokerProcess({ config: brokerConfig(caKeyType, true), databaseUrl: noSyncUrl });
        try {
          const issuer = await DevIssuer.load(diagBroker.dataDir, `${diagBroker.url}/dev/oidc`, systemClock);
          noSync = await driveBroker({ broker: diagBroker, issuer, body, dir, label: `${label}-nosync`, log, postgresPid: cluster.pid });
        } finally {
          await diagBroker.close();
        }
      }

      const ca = caKeyType === 'ec-p256' ? 'ECDSA P-256 CA' : 'RSA-2048 CA';
      const fmt = (r) => ({ value: round(r.rate), p50: r.p50, p99: r.p99, peakMB: round(r.peakMB), cpu: cpuCell(r.cpu), errors: r.non2xx + r.errors });
      rows.push(
        { name: `${ca}: latchkey POST /v1/grants, fresh token each (single-use jti)`, ...fmt(single), unit: 'grants/s', audit: auditNote },
        { name: `${ca}: latchkey POST /v1/grants, one token reused (single_use_jti: false)`, ...fmt(reused), unit: 'grants/s' },
        ...(noSync ? [{ name: `${ca}: diagnostic only: same, synchronous_commit=off (audit NOT durable)`, ...fmt(noSync), unit: 'grants/s' }] : []),
        ...(cfssl ? [{ name: `${ca}: cfssl serve POST /api/v1/cfssl/sign (baseline)`, ...fmt(cfssl), unit: 'certs/s' }] : []),
        { name: `${ca}: ceiling: bare node:http server doing only the ES256 token check and the CA signature, no database (lib/crypto-floor-server.js)`, ...fmt(floor), unit: 'answers/s' },
        { name: `${ca}: Node crypto.sign of a ${tbs}-byte TBS, one core (baseline)`, value: round(cryptoRate), unit: 'sigs/s' },
      );
      if (cfssl) {
        const ratio = single.rate / cfssl.rate;
        const cpu = `CPU per answer, all processes: ${cpuTotal(single.cpu).toFixed(2)} ms, cfssl's ${cpuTotal(cfssl.cpu).toFixed(2)} ms`;
        const ceiling = `a Node server doing only the token check and the CA signature: ${(floor.rate / cfssl.rate).toFixed(2)}x`;
        targets.push({ name: `${ca}: latchkey >= 1.5x cfssl`, measured: `${ratio.toFixed(2)}x (single-use), ${(reused.rate / cfssl.rate).toFixed(2)}x (reused token); ${cpu}; ${ceiling}`, met: ratio >= 1.5 });
      } else {
        targets.push({ name: `${ca}: latchkey >= 1.5x cfssl`, measured: 'skipped: cfssl not installed', met: undefined });
      }
      if (caKeyType === 'rsa-2048') {
        const share = single.rate / cryptoRate;
        targets.push({ name: `${ca}: latchkey >= 50% of crypto-only signing`, measured: `${(share * 100).toFixed(0)}% (single-use), ${((reused.rate / cryptoRate) * 100).toFixed(0)}% (reused token); a Node server doing only the token check and the CA signature: ${((floor.rate / cryptoRate) * 100).toFixed(0)}%`, met: share >= 0.5 });
      }
      targets.push({ name: `${ca}: broker peak RSS < 200 MB under load`, measured: `${round(single.peakMB)} MB`, met: single.peakMB < 200 });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { rows, targets, notes };
}
