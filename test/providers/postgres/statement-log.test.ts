import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresKind } from '../../../src/providers/postgres/index.js';
import { startCluster, type TestCluster } from '../../support/embedded-cluster.js';
import { adminQuery, setUpProviderFixture, type ProviderFixture } from './servers.js';

/**
 * A cluster that logs every statement, so the tests can read what reached the
 * server: no statement for a refused name, and never a plaintext password.
 */
describe('what reaches a server that logs every statement', () => {
  let cluster: TestCluster;
  let fx: ProviderFixture;
  let log = '';

  beforeAll(async () => {
    cluster = await startCluster({ postgresFlags: ['-c', 'log_statement=all'], onLog: (line) => (log += line) });
    fx = await setUpProviderFixture(cluster.url);
  });
  afterAll(async () => {
    await fx?.teardown();
    await cluster?.stop();
  });

  /** The log between two marker statements, once the second has been written. */
  async function logDuring(fn: () => Promise<void>): Promise<string> {
    const id = randomUUID();
    await adminQuery(cluster.url, `SELECT 'begin-${id}'`);
    await fn();
    await adminQuery(cluster.url, `SELECT 'end-${id}'`);
    for (let i = 0; i < 500 && !log.includes(`end-${id}`); i++) await sleep(20); // up to 10 s on a loaded machine
    const start = log.indexOf(`begin-${id}`);
    const end = log.indexOf(`end-${id}`);
    expect(start).toBeGreaterThan(-1);
    expect(end).toBeGreaterThan(start);
    return log.slice(start, end);
  }

  const injections: [string, Record<string, unknown>][] = [
    ['a statement after the name', { tables: ['demo.orders; DROP TABLE x'] }],
    ['a doubled quote closing early', { tables: ['"demo"."orders"""'] }],
    ['a quote and a comment', { tables: ['demo."orders" --'] }],
    ['a NUL byte', { tables: ['demo.orders\u0000; DROP TABLE x'] }],
    ['a Cyrillic look-alike letter', { tables: ['demo.\u043erders'] }],
    ['full-width letters', { tables: ['\uff44\uff45\uff4d\uff4f.orders'] }],
    ['a zero-width space', { tables: ['demo.orders\u200b'] }],
    ['a 64-byte name', { tables: [`demo.${'o'.repeat(64)}`] }],
    ['a 64-byte quoted name', { tables: [`demo."${'o'.repeat(64)}"`] }],
    ['a Unicode-escape identifier', { tables: ['U&"d\\0061ta".orders'] }],
    ['a spliced column name', { tables: ['demo.orders'], columns: { 'demo.orders': ['id) ON demo.orders TO PUBLIC; --'] } }],
    ['a quoted column with a quote', { tables: ['demo.orders'], columns: { 'demo.orders': ['"id""'] } }],
  ];

  it.each(injections)('a name with %s is refused with a 400 naming it, and no statement reaches the server', async (_what, scope) => {
    const request = { database: fx.database, ...scope };
    const parsed = postgresKind.scopeSchema.safeParse(request);
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues[0]!.message).toMatch(/is not a (table|column) name: /);

    // Also when a caller skips the schema and hands the raw scope to the provider.
    const statements = await logDuring(async () => {
      await expect(
        fx.provider.issue({
          grantId: randomUUID(),
          requestId: randomUUID(),
          subject: 'mallory',
          issuerName: 'test',
          claims: {},
          allow: { ...fx.allow, tables: ['demo.*', '*.*'] },
          scope: { privileges: ['SELECT'], ...request } as never,
          issuedAt: new Date(),
          expiresAt: new Date(Date.now() + 60_000),
        }),
      ).rejects.toMatchObject({ code: 'invalid_scope', status: 400 });
    });
    expect(statements.match(/statement: /g)).toHaveLength(1); // only the end marker's
    expect(statements).not.toMatch(/DROP TABLE|TO PUBLIC|CREATE ROLE/);
  });

  it('never sees the plaintext password: it gets a SCRAM verifier, and the login still works', async () => {
    let password = '';
    const statements = await logDuring(async () => {
      const { login, providerRef } = await fx.issue({ database: fx.database, tables: ['demo.orders'] });
      password = login.password;
      const client = await fx.connectAs(login);
      expect((await client.query('SELECT count(*)::int AS n FROM demo.orders')).rows).toEqual([{ n: 5 }]);
      await client.end();
      await fx.provider.revoke({ grantId: 'g', providerRef, reason: 'revoked' });
    });
    expect(password).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statements).toMatch(/CREATE ROLE "lkt_[a-z0-9_]+" LOGIN NOINHERIT PASSWORD 'SCRAM-SHA-256\$256:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+'/);
    expect(statements).toMatch(/DROP ROLE IF EXISTS/);
    expect(log).not.toContain(password);
    expect(log).not.toContain(encodeURIComponent(password));
  });
});
