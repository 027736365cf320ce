import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { postgresKind } from '../../../src/providers/postgres/index.js';
import { freePort } from '../../support/embedded-cluster.js';
import { adminQuery, testDeps } from './servers.js';

async function openWithUrl(url: string) {
  const env = `LATCHKEY_TEST_PG_ERRORS_${randomBytes(4).toString('hex')}`;
  process.env[env] = url;
  const settings = postgresKind.targetSchema.parse({ admin_url_env: env, databases: ['postgres'], tables: ['demo.*'], marker_role: `lkm_err_${randomBytes(3).toString('hex')}` });
  return postgresKind.open('broken-db', settings, testDeps());
}

const issueInput = {
  grantId: randomUUID(),
  requestId: randomUUID(),
  subject: 'ada',
  issuerName: 'test',
  claims: {},
  allow: postgresKind.allowSchema.parse({ tables: ['demo.*'] }),
  scope: postgresKind.scopeSchema.parse({ database: 'postgres', tables: ['demo.orders'] }),
  issuedAt: new Date(),
  expiresAt: new Date(Date.now() + 60_000),
};

describe('a PostgreSQL target that cannot be used', () => {
  it('opens while the server is down, is not ready, and issue/revoke/list fail as ProviderUnavailable (retryable)', async () => {
    const provider = await openWithUrl(`postgres://postgres:hunter2-secret@127.0.0.1:${await freePort()}/postgres`);
    try {
      expect(await provider.ready()).toBe(false);
      for (const attempt of [
        () => provider.issue(issueInput),
        () => provider.revoke({ grantId: 'g', providerRef: 'lk_ada_a1b2c3d4e5f6', reason: 'expired' }),
        () => provider.listIssued!(),
      ]) {
        const err = await attempt().catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 'provider_unavailable', status: 503 });
        expect(String((err as Error).message)).toMatch(/postgres target broken-db: .*cannot reach the server \(ECONNREFUSED\)/);
        expect(JSON.stringify({ ...(err as object), message: (err as Error).message })).not.toContain('hunter2');
      }
    } finally {
      await provider.close();
    }
  });

  it('reports a refused admin password as ProviderMisconfigured, without the password', async () => {
    const url = new URL(inject('postgresUrl'));
    url.password = 'wrong-password-s3cr3t';
    const provider = await openWithUrl(url.toString());
    try {
      const err = await provider.issue(issueInput).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'provider_misconfigured', status: 502 });
      expect((err as Error).message).toMatch(/the admin password was refused \(28P01/);
      expect((err as Error).message).not.toContain('s3cr3t');
    } finally {
      await provider.close();
    }
  });

  it('refuses to open without its admin URL, naming the variable', async () => {
    const settings = postgresKind.targetSchema.parse({ admin_url_env: 'LATCHKEY_TEST_UNSET_VARIABLE', databases: ['postgres'], tables: ['demo.*'] });
    await expect(postgresKind.open('no-url', settings, testDeps())).rejects.toMatchObject({
      code: 'provider_misconfigured',
      message: 'postgres target no-url: environment variable LATCHKEY_TEST_UNSET_VARIABLE (admin_url_env) is not set',
    });
  });

  it('refuses to open on an admin URL with a malformed %-escape, without echoing the password', async () => {
    process.env['LATCHKEY_TEST_BAD_ESCAPE_URL'] = 'postgresql://admin:50%off@127.0.0.1:5432/postgres';
    try {
      const settings = postgresKind.targetSchema.parse({ admin_url_env: 'LATCHKEY_TEST_BAD_ESCAPE_URL', databases: ['postgres'], tables: ['demo.*'] });
      const err = await postgresKind.open('bad-escape', settings, testDeps()).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'provider_misconfigured', message: expect.stringContaining('malformed %-escape') });
      expect((err as Error).message).not.toContain('50%off');
    } finally {
      delete process.env['LATCHKEY_TEST_BAD_ESCAPE_URL'];
    }
  });

  it('reads the admin URL from a file', async () => {
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const file = join(mkdtempSync(join(tmpdir(), 'lk-url-')), 'admin-url');
    writeFileSync(file, `${inject('postgresUrl')}\n`);
    const marker = `lkm_file_${randomBytes(3).toString('hex')}`;
    const settings = postgresKind.targetSchema.parse({ admin_url_file: file, databases: ['postgres'], tables: ['demo.*'], marker_role: marker });
    const provider = await postgresKind.open('from-file', settings, testDeps());
    try {
      expect(await provider.ready()).toBe(true);
      expect(provider.publicInfo!()).toMatchObject({ host: '127.0.0.1', databases: ['postgres'], sslmode: 'prefer' });
      expect((await adminQuery(inject('postgresUrl'), 'SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', [marker])).rows).toEqual([{ rolcanlogin: false }]);
    } finally {
      await provider.close();
      await adminQuery(inject('postgresUrl'), `DROP ROLE IF EXISTS ${marker}`);
    }
  });
});
