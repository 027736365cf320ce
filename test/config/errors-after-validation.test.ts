import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { createMigratedDatabase } from '../support/database.js';

// Issuers and keys are checked when the broker applies them, after the file's schema:
// their errors still name the file, the dotted path and what was expected, and stop `serve`.
describe('latchkey serve and a mistake found after the schema check', () => {
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
  const serve = (path: string, env: Record<string, string | undefined> = {}) => runCli(['serve', '--config', path], { env: { DATABASE_URL: db.url, ...env } });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-config-'));
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

  it('names the file before the dotted path of an issuer refused outside dev mode', async () => {
    const path = writeConfig('dev-issuer.yaml', production({ issuers: [{ name: 'dev', preset: 'dev', audience: 'latchkey' }], rules: [] }));
    const r = await serve(path);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`latchkey: ${path}: issuers[0].preset: the dev issuer exists only in \`latchkey dev\`; remove issuer "dev" from a production configuration (config_invalid)\n`);
  });

  it('names the file before a key setting it cannot use', async () => {
    const path = writeConfig('no-audit-key.yaml', production({ keys: {} }));
    const r = await serve(path);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`latchkey: ${path}: keys.audit_signing_key_file is required outside dev mode: an Ed25519 private key (PKCS#8 PEM) that signs audit checkpoints (config_invalid)\n`);
  });
});

