import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { asPostgresCredential, formatPostgresCredential, psqlEnvironment } from '../../../src/cli/format-postgres.js';
import { buildPostgresCredential } from '../../../src/providers/postgres/credential.js';
import { Secret } from '../../../src/secret.js';

const cred = buildPostgresCredential({
  host: 'db.internal',
  port: 5433,
  database: 'app',
  user: 'lk_ada_a1b2c3d4e5f6',
  password: new Secret("p:a\\ss'w/rd"),
  sslmode: 'require',
  expiresAt: new Date('2026-01-01T00:15:00Z'),
});

const GRANT_ID = '6f1c2b9e-0d4a-4c55-9e1f-3a2b7c8d9e01';

describe('PostgreSQL credential formats', () => {
  it('uri: a libpq URI with the password percent-encoded', () => {
    expect(formatPostgresCredential(cred, 'uri', GRANT_ID)).toBe("postgresql://lk_ada_a1b2c3d4e5f6:p%3Aa%5Css'w%2Frd@db.internal:5433/app?sslmode=require\n");
  });

  it('env: export lines a shell can eval back to the exact values', () => {
    const text = formatPostgresCredential(cred, 'env', GRANT_ID);
    const out = execFileSync('sh', ['-c', `${text} printf '%s|%s|%s' "$PGPASSWORD" "$PGSSLMODE" "$PGPORT"`]).toString();
    expect(out).toBe("p:a\\ss'w/rd|require|5433");
  });

  it('pgpass: one line with : and \\ escaped', () => {
    expect(formatPostgresCredential(cred, 'pgpass', GRANT_ID)).toBe("db.internal:5433:app:lk_ada_a1b2c3d4e5f6:p\\:a\\\\ss'w/rd\n");
  });

  it('json: the grant id (to revoke it later) and the whole credential with its expiry', () => {
    expect(JSON.parse(formatPostgresCredential(cred, 'json', GRANT_ID))).toEqual({ grantId: GRANT_ID, ...cred, expiresAt: '2026-01-01T00:15:00.000Z' });
  });

  it('psqlEnvironment: the six libpq variables', () => {
    expect(psqlEnvironment(cred)).toEqual({
      PGHOST: 'db.internal',
      PGPORT: '5433',
      PGDATABASE: 'app',
      PGUSER: 'lk_ada_a1b2c3d4e5f6',
      PGPASSWORD: "p:a\\ss'w/rd",
      PGSSLMODE: 'require',
    });
  });

  it('reads a credential back from a response body, naming a missing field', () => {
    expect(asPostgresCredential(JSON.parse(JSON.stringify(cred)))).toEqual(cred);
    expect(() => asPostgresCredential({ ...cred, port: '5433' })).toThrow(/port/);
  });

  it('puts IPv6 hosts in brackets in the URI', () => {
    const v6 = buildPostgresCredential({ host: '::1', port: 5432, database: 'app', user: 'u', password: new Secret('x'), sslmode: 'prefer', expiresAt: new Date(0) });
    expect(v6.uri).toBe('postgresql://u:x@[::1]:5432/app?sslmode=prefer');
  });
});
