import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../../src/broker.js';
import { validateConfig } from '../../src/config/load.js';
import { providerKinds } from '../../src/providers/registry.js';
import { runCli, startCli } from '../support/cli.js';
import { createMigratedDatabase } from '../support/database.js';
import { freePort } from '../support/embedded-cluster.js';
import { useProductionFiles } from '../support/production-files.js';

// Issuers, keys and targets are checked when the broker applies them, after the file's schema:
// their errors still name the file, the dotted path and what was expected, and stop `serve`.
describe('latchkey serve and a mistake found after the schema check', () => {
  const fixture = useProductionFiles('latchkey-config-');
  const { files, production, writeConfig } = fixture;
  const adminUrlEnv = `LK_CFG_PG_${randomBytes(4).toString('hex').toUpperCase()}`;
  const warehouse = { kind: 'postgres', admin_url_env: adminUrlEnv, sslmode: 'disable', databases: ['app'], tables: ['demo.*'], marker_role: 'lkm_cfg' };
  const serve = (path: string, env: Record<string, string | undefined> = {}) => runCli(['serve', '--config', path], { env: { DATABASE_URL: fixture.databaseUrl, [adminUrlEnv]: undefined, ...env } });

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
    expect(r.stderr).toBe(`latchkey: ${path}: keys.audit_signing_key_file: required outside dev mode: an Ed25519 private key (PKCS#8 PEM) that signs audit checkpoints (config_invalid)\n`);
  });

  it('names the file and the setting when the audit signing key is of the wrong type', async () => {
    const path = writeConfig('ec-audit-key.yaml', production({ keys: { audit_signing_key_file: files.caKey } }));
    const r = await serve(path);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`latchkey: ${path}: keys.audit_signing_key_file: ${files.caKey} is a key of type ec; audit checkpoints are signed with Ed25519 (config_invalid)\n`);
  });

  it('refuses to start on a certificate target without ca_cert_file and ca_key_file, naming the file and the target', async () => {
    const path = writeConfig('no-ca.yaml', production({ targets: { mesh: { kind: 'certificate', trust_domain: 'example.com' } } }));
    const r = await serve(path);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`latchkey: ${path}: targets.mesh: certificate target "mesh": ca_cert_file and ca_key_file are required outside dev mode (config_invalid)\n`);
  });

  it('refuses to start on a certificate target whose CA key file cannot be read', async () => {
    const missing = join(fixture.dir, 'missing.key');
    const path = writeConfig('unreadable-ca.yaml', production({ targets: { mesh: { kind: 'certificate', trust_domain: 'example.com', ca_cert_file: files.caCert, ca_key_file: missing } } }));
    const r = await serve(path);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`latchkey: ${path}: targets.mesh: certificate target "mesh": cannot read CA key file ${missing}: ENOENT: no such file or directory, open '${missing}' (config_invalid)\n`);
  });

  it('refuses to start on a postgres target whose admin URL variable is not set', async () => {
    const path = writeConfig('no-admin-url.yaml', production({ targets: { ...production().targets, warehouse } }));
    const r = await serve(path);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`latchkey: ${path}: targets.warehouse: postgres target warehouse: environment variable ${adminUrlEnv} (admin_url_env) is not set (config_invalid)\n`);
  });

  it('starts while a postgres target’s server is down, and reports that target unreachable', async () => {
    const port = await freePort();
    const path = writeConfig('server-down.yaml', production({ server: { port }, targets: { ...production().targets, warehouse } }));
    const closedPort = await freePort();
    const broker = await startCli(['serve', '--config', path], /latchkey serving/, {
      env: { DATABASE_URL: fixture.databaseUrl, [adminUrlEnv]: `postgresql://latchkey:secret@127.0.0.1:${closedPort}/postgres` },
    });
    try {
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(ready.status).toBe(200);
      const readiness = (await ready.json()) as { targets: Record<string, string> };
      expect(readiness.targets).toEqual({ mesh: 'ready', warehouse: 'unreachable' });
    } finally {
      expect(await broker.stop()).toBe(0);
    }
  });
});

describe('latchkey dev and a target configuration mistake', () => {
  it('refuses to start too, naming the file and the target', async () => {
    const db = await createMigratedDatabase();
    const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-config-dev-'));
    const unset = `LK_CFG_DEV_PG_${randomBytes(4).toString('hex').toUpperCase()}`;
    try {
      const config = validateConfig(
        {
          data_dir: dataDir,
          issuers: [{ name: 'sso', issuer: 'https://sso.example.com', audience: 'latchkey' }],
          targets: { warehouse: { kind: 'postgres', admin_url_env: unset, sslmode: 'disable', databases: ['app'], tables: ['demo.*'], marker_role: 'lkm_cfg_dev' } },
        },
        'dev.yaml',
        providerKinds,
      );
      const starting = startBroker({ config, devMode: true, databaseUrl: db.url, port: 0, env: {}, logger: pino({ level: 'silent' }) });
      await expect(starting).rejects.toThrow(`dev.yaml: targets.warehouse: postgres target warehouse: environment variable ${unset} (admin_url_env) is not set`);
      await expect(starting).rejects.toMatchObject({ code: 'config_invalid', detail: { source: 'dev.yaml', path: 'targets.warehouse' } });
    } finally {
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
