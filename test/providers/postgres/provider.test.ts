import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import pg from 'pg';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { psqlEnvironment } from '../../../src/cli/format-postgres.js';
import type { PostgresCredential } from '../../../src/providers/postgres/credential.js';
import { LOCAL_PG15_URL, adminQuery, roleExists as roleExistsOn, useProviderFixture, withDatabase } from './servers.js';

const execFileAsync = promisify(execFile);

/** psql with the credential in its environment only, as `latchkey grant postgres --exec psql` runs it. */
async function psql(login: PostgresCredential, sql: string): Promise<string> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PG')));
  const { stdout } = await execFileAsync('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', sql], { env: { ...env, ...psqlEnvironment(login) } });
  return stdout.trim();
}

const servers = [
  { label: 'embedded PostgreSQL 18 with SCRAM passwords', url: () => inject('postgresUrl'), checksPasswords: true, version16Plus: true },
  { label: 'the machine PostgreSQL 15 (trust auth)', url: () => LOCAL_PG15_URL, checksPasswords: false, version16Plus: false },
];

describe.each(servers)('PostgreSQL logins on $label', (server) => {
  const on = useProviderFixture(server.url, server.label);
  const { test } = on;

  test('the issued login connects with psql and reads the granted table', async () => {
    const { login } = await on.fx.issue({ database: on.fx.database, tables: ['demo.orders'] });
    expect(await psql(login, 'SELECT count(*) FROM demo.orders')).toBe('5');
    expect(await psql(login, 'SELECT current_user')).toBe(login.user);
  });

  test('with pg, the login reads the granted table and only the granted columns', async () => {
    const { login, auditDetails } = await on.fx.issue({ database: on.fx.database, tables: ['demo.orders', 'demo.customers'] });
    expect(auditDetails).toMatchObject({ tables: ['demo.orders', 'demo.customers'], columns: ['demo.customers.id', 'demo.customers.name'], privileges: ['SELECT'] });
    const client = await on.fx.connectAs(login);
    expect((await client.query('SELECT id, status FROM demo.orders ORDER BY id LIMIT 1')).rows).toEqual([{ id: 1001, status: 'shipped' }]);
    expect((await client.query('SELECT id, name FROM demo.customers WHERE id = 1')).rows).toEqual([{ id: 1, name: 'Ada Lovelace' }]);
    await expect(client.query('SELECT email FROM demo.customers')).rejects.toMatchObject({ code: '42501' });
  });

  describe('everything else is refused with a permission error', () => {
    let client: pg.Client;
    beforeAll(async () => {
      if (on.skipReason) return;
      const { login } = await on.fx.issue({ database: on.fx.database, tables: ['demo.orders'] });
      client = await on.fx.connectAs(login);
      // Read-only is the default for SELECT grants, but privileges must hold without it.
      await client.query('SET default_transaction_read_only = off');
    });

    it.for<[what: string, sql: string]>([
      ['SELECT on another table', 'SELECT * FROM demo.payments'],
      ['SELECT on another schema', 'SELECT * FROM secret.keys'],
      ['INSERT', "INSERT INTO demo.orders VALUES (9, 1, now(), 'x', 1)"],
      ['UPDATE', "UPDATE demo.orders SET status = 'x'"],
      ['DELETE', 'DELETE FROM demo.orders'],
      ['TRUNCATE', 'TRUNCATE demo.orders'],
      ['CREATE TABLE in public', 'CREATE TABLE public.sneaky (id int)'],
      ['CREATE TABLE in the granted schema', 'CREATE TABLE demo.sneaky (id int)'],
      ['CREATE SCHEMA', 'CREATE SCHEMA sneaky'],
    ])('%s', async ([, sql], ctx) => {
      if (on.skipReason) ctx.skip(on.skipReason);
      await expect(client.query(sql)).rejects.toMatchObject({ code: '42501' });
    });
  });

  test('a SELECT grant is read-only by default and carries the configured settings, limit, expiry and grant id', async () => {
    const grantId = randomUUID();
    const expiresAt = new Date(Date.now() + 10 * 60_000);
    const { login } = await on.fx.issue({ database: on.fx.database, tables: ['demo.orders'] }, { grantId, expiresAt });
    const role = await adminQuery(
      on.fx.serverUrl,
      `SELECT r.rolcanlogin, r.rolinherit, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolconnlimit, r.rolvaliduntil,
              shobj_description(r.oid, 'pg_authid') AS comment,
              pg_has_role(r.oid, $2, 'MEMBER') AS in_marker,
              (SELECT setconfig FROM pg_db_role_setting WHERE setrole = r.oid AND setdatabase = 0) AS settings
         FROM pg_roles r WHERE rolname = $1`,
      [login.user, on.fx.marker],
    );
    expect(role.rows[0]).toMatchObject({
      rolcanlogin: true,
      // From 16 on, inheritance is set per membership (the group's privileges yes, the marker's no); up to 15 it is the role's.
      rolinherit: !server.version16Plus,
      rolsuper: false,
      rolcreaterole: false,
      rolcreatedb: false,
      rolconnlimit: 3,
      comment: `latchkey grant ${grantId}`,
      in_marker: true,
    });
    expect((role.rows[0].rolvaliduntil as Date).getTime()).toBe(Math.floor(expiresAt.getTime()));
    expect(role.rows[0].settings).toEqual(expect.arrayContaining(['statement_timeout=30s', 'idle_in_transaction_session_timeout=60000', 'default_transaction_read_only=on']));
    expect(login.user).toMatch(/^lkt_user_ada_example_com_[0-9a-f]{12}$/);
    expect(login.uri).toBe(`postgresql://${login.user}:${encodeURIComponent(login.password)}@${login.host}:${login.port}/${on.fx.database}?sslmode=prefer`);
    const client = await on.fx.connectAs(login);
    await expect(client.query("UPDATE demo.orders SET status = 'x'")).rejects.toMatchObject({ code: '25006' });
  });

  test('an INSERT grant can insert into exactly the granted columns', async () => {
    const { login } = await on.fx.issue({ database: on.fx.database, tables: ['demo.customers'], privileges: ['SELECT', 'INSERT'], columns: { 'demo.customers': ['id', 'name'] } });
    const client = await on.fx.connectAs(login);
    await expect(client.query("INSERT INTO demo.customers (id, name) VALUES (99, 'Ken')")).rejects.toMatchObject({ code: '23502' });
    await expect(client.query("INSERT INTO demo.customers (id, name, email, country) VALUES (99, 'Ken', 'k@x', 'US')")).rejects.toMatchObject({ code: '42501' });
  });


  it.skipIf(!server.version16Plus)('a login cannot act as the marker role (PostgreSQL 16+: membership without SET)', async (ctx) => {
    if (on.skipReason) ctx.skip(on.skipReason);
    const { login } = await on.fx.issue({ database: on.fx.database, tables: ['demo.orders'] });
    const client = await on.fx.connectAs(login);
    await expect(client.query(`SET ROLE ${on.fx.marker}`)).rejects.toMatchObject({ code: '42501' });
  });

  it.skipIf(!server.checksPasswords)('a login whose VALID UNTIL has passed is refused at sign-in', async (ctx) => {
    if (on.skipReason) ctx.skip(on.skipReason);
    const { login } = await on.fx.issue({ database: on.fx.database, tables: ['demo.orders'] }, { expiresAt: new Date(Date.now() - 1000) });
    await expect(on.fx.connectAs(login)).rejects.toMatchObject({ code: '28P01' });
  });

  it.skipIf(!server.checksPasswords)('a wrong password is refused', async (ctx) => {
    if (on.skipReason) ctx.skip(on.skipReason);
    const { login } = await on.fx.issue({ database: on.fx.database, tables: ['demo.orders'] });
    await expect(on.fx.connectAs({ ...login, password: `${login.password}x` })).rejects.toMatchObject({ code: '28P01' });
  });

  test('a table or column missing from the catalog is an InvalidScope naming it, and no role is made', async () => {
    const before = await on.fx.provider.listIssued();
    const fxAllowAll = { ...on.fx.allow, tables: ['demo.*'] };
    const call = (scope: Record<string, unknown>) =>
      on.fx.provider.issue({
        grantId: randomUUID(),
        requestId: randomUUID(),
        subject: 'x',
        issuerName: 'test',
        claims: {},
        allow: fxAllowAll,
        scope: { privileges: ['SELECT'], ...scope } as never,
        issuedAt: new Date(),
        expiresAt: new Date(Date.now() + 60_000),
      });
    await expect(call({ database: on.fx.database, tables: ['demo.orders', 'demo.refunds'] })).rejects.toMatchObject({
      code: 'invalid_scope',
      status: 400,
      message: `table demo.refunds does not exist in database ${on.fx.database}`,
    });
    await expect(call({ database: on.fx.database, tables: ['demo.orders'], columns: { 'demo.orders': ['id', 'discount'] } })).rejects.toMatchObject({
      code: 'invalid_scope',
      message: 'column discount does not exist in table demo.orders',
    });
    await expect(call({ database: on.fx.otherDatabase, tables: ['demo.orders'] })).rejects.toMatchObject({
      code: 'invalid_scope',
      message: `table demo.orders does not exist in database ${on.fx.otherDatabase}`,
    });
    expect(await on.fx.provider.listIssued()).toEqual(before);
  });

  test('listIssued finds every role made, with its grant id', async () => {
    const a = await on.fx.issue({ database: on.fx.database, tables: ['demo.orders'] }, { grantId: 'grant-a' });
    const b = await on.fx.issue({ database: on.fx.database, tables: ['demo.orders'] }, { grantId: 'grant-b' });
    const issued = await on.fx.provider.listIssued();
    expect(issued).toEqual(expect.arrayContaining([{ providerRef: a.providerRef, grantId: 'grant-a' }, { providerRef: b.providerRef, grantId: 'grant-b' }]));
  });

  describe('revocation', () => {
    const roleExists = (role: string) => roleExistsOn(on.fx.serverUrl, role);

    test('stops new logins, terminates an open session and drops the role', async () => {
      const { login, providerRef } = await on.fx.issue({ database: on.fx.database, tables: ['demo.orders'] });
      const session = await on.fx.connectAs(login);
      const pid = (await session.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      await on.fx.provider.revoke({ grantId: 'g', providerRef, reason: 'revoked' });
      // Terminated, not merely stripped of privileges: even a query that needs none fails, and the backend is gone.
      await expect(session.query('SELECT 1')).rejects.toThrow(/terminat|connection error/);
      expect((await adminQuery(on.fx.serverUrl, 'SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount).toBe(0);
      await expect(on.fx.connectAs(login)).rejects.toMatchObject({ code: expect.stringMatching(/^28/) });
      expect(await roleExists(providerRef)).toBe(false);
      expect((await on.fx.provider.listIssued()).map((a) => a.providerRef)).not.toContain(providerRef);
    });

    test('drops a role that owns objects in two databases and a temp table, and what it made with it', async () => {
      const { login, providerRef } = await on.fx.issue({ database: on.fx.database, tables: ['demo.orders'] });
      // A target that allowed CREATE: the test grants it by hand.
      await adminQuery(withDatabase(on.fx.serverUrl, on.fx.database), `GRANT CREATE ON SCHEMA demo TO ${providerRef}`);
      await adminQuery(withDatabase(on.fx.serverUrl, on.fx.otherDatabase), `GRANT CREATE ON SCHEMA public TO ${providerRef}`);
      const session = await on.fx.connectAs(login);
      await session.query('SET default_transaction_read_only = off');
      await session.query('CREATE TABLE demo.made_by_login (id int); INSERT INTO demo.made_by_login VALUES (1); CREATE TEMP TABLE scratch (id int)');
      const other = await on.fx.connectAs({ ...login, database: on.fx.otherDatabase });
      await other.query('SET default_transaction_read_only = off');
      await other.query('CREATE TABLE public.made_elsewhere (id int)');

      await on.fx.provider.revoke({ grantId: 'g', providerRef, reason: 'expired' });

      expect(await roleExists(providerRef)).toBe(false);
      const owner = await adminQuery(withDatabase(on.fx.serverUrl, on.fx.database), `SELECT tableowner FROM pg_tables WHERE schemaname = 'demo' AND tablename = 'made_by_login'`);
      // Never reassigned to the admin: what a login made goes with it (see test/adversarial/).
      expect(owner.rows).toEqual([]);
      const acl = await adminQuery(withDatabase(on.fx.serverUrl, on.fx.database), `SELECT nspacl::text FROM pg_namespace WHERE nspname = 'demo'`);
      expect(acl.rows[0].nspacl ?? '').not.toContain(providerRef);
    });

    test('is idempotent: twice, on a half-dropped role, and on a role that never existed', async () => {
      const { providerRef } = await on.fx.issue({ database: on.fx.database, tables: ['demo.orders'] });
      // Half-dropped, as a broker killed in the middle of revoke would leave it.
      await adminQuery(withDatabase(on.fx.serverUrl, on.fx.database), `ALTER ROLE ${providerRef} NOLOGIN; DROP OWNED BY ${providerRef}`);
      await on.fx.provider.revoke({ grantId: 'g', providerRef, reason: 'revoked' });
      await on.fx.provider.revoke({ grantId: 'g', providerRef, reason: 'revoked' });
      await on.fx.provider.revoke({ grantId: 'g', providerRef: 'lkt_never_made_000000000000', reason: 'orphan' });
      expect(await roleExists(providerRef)).toBe(false);
    });

    test('many grants and revocations at once on the same tables all succeed, and every revoked role is gone', async () => {
      const first = await Promise.all(Array.from({ length: 12 }, () => on.fx.issue({ database: on.fx.database, tables: ['demo.orders', 'demo.customers'] })));
      const refs = first.map((g) => g.providerRef);
      // Every role revoked twice at once (two replicas racing), while more grants are made.
      const [, second] = await Promise.all([
        Promise.all([...refs, ...refs].map((providerRef) => on.fx.provider.revoke({ grantId: 'g', providerRef, reason: 'expired' }))),
        Promise.all(Array.from({ length: 6 }, () => on.fx.issue({ database: on.fx.database, tables: ['demo.orders'] }))),
      ]);
      const left = (await on.fx.provider.listIssued()).map((a) => a.providerRef);
      for (const ref of refs) expect(left).not.toContain(ref);
      for (const grant of second) expect(left).toContain(grant.providerRef);
      const client = await on.fx.connectAs(second[0]!.login);
      expect((await client.query('SELECT count(*)::int AS n FROM demo.orders')).rows).toEqual([{ n: 5 }]);
    });

    test('refuses to drop a role that is not in the marker group', async () => {
      const victim = `lkt_not_ours_${on.fx.marker}`;
      await adminQuery(on.fx.serverUrl, `CREATE ROLE ${victim} LOGIN`);
      try {
        await expect(on.fx.provider.revoke({ grantId: 'g', providerRef: victim, reason: 'orphan' })).rejects.toMatchObject({ code: 'provider_misconfigured' });
        expect(await roleExists(victim)).toBe(true);
      } finally {
        await adminQuery(on.fx.serverUrl, `DROP ROLE ${victim}`);
      }
    });
  });
});
