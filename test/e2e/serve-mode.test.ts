import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli } from '../support/cli.js';
import { createMigratedDatabase } from '../support/database.js';
import { freePort } from '../support/embedded-cluster.js';

// `latchkey serve` is production: it must refuse what only dev mode may do.
describe('latchkey serve', () => {
  let dir: string;
  let db: Awaited<ReturnType<typeof createMigratedDatabase>>;
  const files = { key: '', caCert: '', caKey: '' };

  const production = (overrides: Record<string, unknown> = {}) => ({
    server: { port: 0 },
    keys: { audit_signing_key_file: files.key },
    issuers: [{ name: 'sso', issuer: 'https://sso.example.com', audience: 'latchkey' }],
    targets: { mesh: { kind: 'certificate', trust_domain: 'example.com', ca_cert_file: files.caCert, ca_key_file: files.caKey } },
    rules: [{ name: 'eng', issuer: 'sso', when: { groups: { contains: 'eng' } }, allow: [{ kind: 'certificate', target: 'mesh', spiffe_id: 'spiffe://{trust_domain}/user/{sub}' }] }],
    ...overrides,
  });
  const writeConfig = (name: string, config: unknown) => {
    const path = join(dir, name);
    writeFileSync(path, stringify(config));
    return path;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-serve-'));
    db = await createMigratedDatabase();
    files.key = join(dir, 'audit.pem');
    writeFileSync(files.key, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
    files.caKey = join(dir, 'ca.key');
    files.caCert = join(dir, 'ca.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', files.caKey, '-out', files.caCert, '-days', '30', '-subj', '/CN=test root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { stdio: 'ignore' });
  });
  afterAll(async () => {
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to start without a database', async () => {
    const r = await runCli(['serve', '--config', writeConfig('a.yaml', production())], { env: { DATABASE_URL: '' } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('DATABASE_URL');
  });

  it('refuses the development issuer', async () => {
    const config = production({ issuers: [{ name: 'dev', preset: 'dev', audience: 'latchkey' }], rules: [] });
    const r = await runCli(['serve', '--config', writeConfig('b.yaml', config)], { env: { DATABASE_URL: db.url } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/dev/);
  });

  it('refuses to start without the audit signing key', async () => {
    const r = await runCli(['serve', '--config', writeConfig('c.yaml', production({ keys: {} }))], { env: { DATABASE_URL: db.url } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('audit_signing_key_file');
  });

  it('refuses to listen on every interface without a public URL', async () => {
    const r = await runCli(['serve', '--config', writeConfig('f.yaml', production({ server: { host: '0.0.0.0', port: 0 } }))], { env: { DATABASE_URL: db.url } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('server.public_url');
  });

  it('refuses an invalid file, naming the file and each dotted path', async () => {
    const broken = production({ server: { port: 'eighty' }, rules: [{ name: 'x', issuer: 'nobody', allow: [{ kind: 'certificate', target: 'mesh', spiffe_id: 'spiffe://{trust_domain}/u' }] }] });
    const path = writeConfig('d.yaml', broken);
    const r = await runCli(['serve', '--config', path], { env: { DATABASE_URL: db.url } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(path);
    expect(r.stderr).toContain('server.port');
  });

  it('serves with real keys and no development issuer, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const path = writeConfig('e.yaml', production({ server: { port } }));
    const broker = await startCli(['serve', '--config', path], /latchkey serving/, { env: { DATABASE_URL: db.url } });
    try {
      const url = `http://127.0.0.1:${port}`;
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      expect((await fetch(`${url}/dev/oidc/.well-known/openid-configuration`)).status).toBe(404);
      expect(await (await fetch(`${url}/v1/ca?target=mesh`)).text()).toContain('BEGIN CERTIFICATE');
    } finally {
      expect(await broker.stop()).toBe(0);
    }
  });
});
