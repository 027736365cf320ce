import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/embedded-cluster.js';
import { runCli, startCli } from '../support/cli.js';

// What the README promises: `latchkey dev` gives a working broker on its own
// embedded PostgreSQL, and the README's commands produce a certificate and a login.
describe('latchkey dev, driven through the command line as the README shows', () => {
  let dataDir: string;
  let work: string;
  let url: string;
  let dev: Awaited<ReturnType<typeof startCli>>;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'latchkey-dev-'));
    work = mkdtempSync(join(tmpdir(), 'latchkey-work-'));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    dev = await startCli(['dev', '--port', String(port), '--data-dir', dataDir], /Ctrl-C stops/, { timeoutMs: 90_000 });
  }, 120_000);

  afterAll(async () => {
    await dev?.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  it('prints a banner that says it is development-only and what to try next', () => {
    expect(dev.output()).toContain(`broker listening on ${url}`);
    expect(dev.output()).toContain('DEVELOPMENT MODE');
    expect(dev.output()).toContain('latchkey token');
  });

  it('is ready, and serves its development issuer only under /dev/oidc', async () => {
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    const discovery = (await (await fetch(`${url}/dev/oidc/.well-known/openid-configuration`)).json()) as { issuer: string };
    expect(discovery.issuer).toBe(`${url}/dev/oidc`);
  });

  it('mints a development token and gets a client certificate that openssl verifies', async () => {
    const env = { LATCHKEY_URL: url };
    const token = await runCli(['token', '--claim', 'sub=alice', '--claim', 'team=payments'], { env });
    expect(token.code).toBe(0);
    const out = join(work, 'alice-cert');
    const grant = await runCli(['grant', 'cert', '--target', 'dev-mesh', '--generate', '--out', out], { env: { ...env, LATCHKEY_TOKEN: token.stdout.trim() } });
    expect(grant.stderr).toBe('');
    expect(grant.code).toBe(0);
    expect(grant.stdout).toContain('spiffe://latchkey.dev/team/payments/alice');
    expect(statSync(join(out, 'tls.key')).mode & 0o777).toBe(0o600);
    const verified = execFileSync('openssl', ['verify', '-CAfile', join(out, 'ca.crt'), join(out, 'tls.crt')]).toString();
    expect(verified).toContain(': OK');
    const text = execFileSync('openssl', ['x509', '-in', join(out, 'tls.crt'), '-noout', '-text']).toString();
    expect(text).toContain('URI:spiffe://latchkey.dev/team/payments/alice');
    expect(text).toContain('CA:FALSE');
  });

  it('warns on stderr when the rule cuts the ttl asked for', async () => {
    const env = { LATCHKEY_URL: url };
    const token = (await runCli(['token', '--claim', 'sub=carl', '--claim', 'team=payments'], { env })).stdout.trim();
    const grant = await runCli(['grant', 'cert', '--target', 'dev-mesh', '--generate', '--ttl', '2h', '--out', join(work, 'carl-cert')], { env: { ...env, LATCHKEY_TOKEN: token } });
    expect(grant.code).toBe(0);
    expect(grant.stderr).toBe('latchkey: warning: ttl: asked for 2h; rule team-client-certificates allows at most 15m, so this grant lasts 15m\n');
  });

  it('refuses a --csr file that holds no certificate request before spending the token on it', async () => {
    const env = { LATCHKEY_URL: url };
    const token = (await runCli(['token', '--claim', 'sub=bob', '--claim', 'team=payments'], { env })).stdout.trim();
    const notACsr = join(work, 'bob.key');
    execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', notACsr]);
    const refused = await runCli(['grant', 'cert', '--target', 'dev-mesh', '--csr', notACsr, '--out', join(work, 'bob-cert')], { env: { ...env, LATCHKEY_TOKEN: token } });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`--csr ${notACsr} holds no PEM certificate request: expected a "-----BEGIN CERTIFICATE REQUEST-----" block`);
    // The same token still works: nothing reached the broker.
    const csr = join(work, 'bob.csr');
    execFileSync('openssl', ['req', '-new', '-key', notACsr, '-subj', '/CN=bob', '-out', csr]);
    const granted = await runCli(['grant', 'cert', '--target', 'dev-mesh', '--csr', csr, '--out', join(work, 'bob-cert')], { env: { ...env, LATCHKEY_TOKEN: token } });
    expect(granted.stderr).toBe('');
    expect(granted.stdout).toContain('spiffe://latchkey.dev/team/payments/bob');
  });

  it('gets an analytics engineer a login that reads demo.orders and nothing else', async () => {
    const env = { LATCHKEY_URL: url };
    const token = (await runCli(['token', '--claim', 'sub=bob', '--claim', 'team=analytics'], { env })).stdout.trim();
    const grant = await runCli(['grant', 'postgres', '--target', 'dev-db', '--database', 'demo', '--table', 'demo.orders', '--format', 'json'], { env: { ...env, LATCHKEY_TOKEN: token } });
    expect(grant.code).toBe(0);
    const cred = JSON.parse(grant.stdout) as { grantId: string; uri: string; user: string };
    const client = new pg.Client({ connectionString: cred.uri });
    await client.connect();
    try {
      const rows = await client.query('SELECT count(*)::int AS n FROM demo.orders');
      expect(rows.rows[0].n).toBeGreaterThan(0);
      await expect(client.query('SELECT * FROM demo.customers')).rejects.toThrow(/permission denied/);
    } finally {
      await client.end();
    }
    // The JSON names its grant, so a script can end the login when it is done.
    const again = (await runCli(['token', '--claim', 'sub=bob', '--claim', 'team=analytics'], { env })).stdout.trim();
    const revoked = await runCli(['revoke', cred.grantId], { env: { ...env, LATCHKEY_TOKEN: again } });
    expect(revoked.code).toBe(0);
    await expect(new pg.Client({ connectionString: cred.uri }).connect()).rejects.toThrow(/password authentication failed|does not exist/);
  });

  it('names the grant on stderr beside a URI, so the login can be revoked', async () => {
    const env = { LATCHKEY_URL: url };
    const token = (await runCli(['token', '--claim', 'sub=bob', '--claim', 'team=analytics'], { env })).stdout.trim();
    const grant = await runCli(['grant', 'postgres', '--target', 'dev-db', '--database', 'demo', '--table', 'demo.orders', '--format', 'uri'], { env: { ...env, LATCHKEY_TOKEN: token } });
    expect(grant.code).toBe(0);
    expect(grant.stdout).toMatch(/^postgresql:\/\/lk_bob_[0-9a-f]+:[^@]+@127\.0\.0\.1:\d+\/demo\?sslmode=disable\n$/);
    expect(grant.stderr).toMatch(/^latchkey: grant [0-9a-f-]{36}, login lk_bob_[0-9a-f]+ until \S+\n$/);
  });

  it('says exactly why a request is denied', async () => {
    const env = { LATCHKEY_URL: url };
    const token = (await runCli(['token', '--claim', 'sub=bob', '--claim', 'team=analytics'], { env })).stdout.trim();
    const grant = await runCli(['grant', 'postgres', '--target', 'dev-db', '--database', 'demo', '--table', 'demo.customers'], { env: { ...env, LATCHKEY_TOKEN: token } });
    expect(grant.code).toBe(1);
    expect(grant.stderr).toContain('demo.customers');
    expect(grant.stderr).toContain('policy_denied');
  });

  it('keeps its CA across a restart', async () => {
    const before = readFileSync(join(dataDir, 'ca', 'dev-mesh', 'ca.crt'), 'utf8');
    await dev.stop();
    const port = Number(new URL(url).port);
    dev = await startCli(['dev', '--port', String(port), '--data-dir', dataDir], /Ctrl-C stops/, { timeoutMs: 90_000 });
    const bundle = await (await fetch(`${url}/v1/ca?target=dev-mesh`)).text();
    expect(bundle).toBe(before);
  }, 120_000);
});
