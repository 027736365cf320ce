import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll } from 'vitest';
import { createMigratedDatabase } from './database.js';

type MigratedDatabase = Awaited<ReturnType<typeof createMigratedDatabase>>;

/**
 * What `latchkey serve` needs, made once per describe block: a migrated
 * database, an Ed25519 audit key and an operator CA (openssl) in a scratch
 * folder. `production(overrides)` is a configuration using them (an SSO
 * issuer, a certificate target `mesh`, one rule); `writeConfig` writes one as
 * YAML and returns its path.
 */
export function useProductionFiles(prefix: string) {
  let dir = '';
  let db: MigratedDatabase | undefined;
  const files = { key: '', caCert: '', caKey: '' };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), prefix));
    db = await createMigratedDatabase();
    files.key = join(dir, 'audit.pem');
    writeFileSync(files.key, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
    files.caKey = join(dir, 'ca.key');
    files.caCert = join(dir, 'ca.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', files.caKey, '-out', files.caCert, '-days', '30', '-subj', '/CN=test root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { stdio: 'ignore' });
  });
  afterAll(async () => {
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  return {
    files,
    /** The scratch folder (set once the block's beforeAll ran). */
    get dir(): string {
      return dir;
    },
    /** The migrated database's URL (set once the block's beforeAll ran). */
    get databaseUrl(): string {
      if (!db) throw new Error('useProductionFiles: the database is made in beforeAll');
      return db.url;
    },
    production: (overrides: Record<string, unknown> = {}) => ({
      server: { port: 0 },
      keys: { audit_signing_key_file: files.key },
      issuers: [{ name: 'sso', issuer: 'https://sso.example.com', audience: 'latchkey' }],
      targets: { mesh: { kind: 'certificate', trust_domain: 'example.com', ca_cert_file: files.caCert, ca_key_file: files.caKey } },
      rules: [{ name: 'eng', issuer: 'sso', when: { groups: { contains: 'eng' } }, allow: [{ kind: 'certificate', target: 'mesh', spiffe_id: 'spiffe://{trust_domain}/user/{sub}' }] }],
      ...overrides,
    }),
    writeConfig(name: string, config: unknown): string {
      const path = join(dir, name);
      writeFileSync(path, stringify(config));
      return path;
    },
  };
}
