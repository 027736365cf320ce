import pg from 'pg';
import { describe, expect, inject } from 'vitest';
import { LOCAL_PG15_URL, adminQuery, roleExists, useProviderFixture, withDatabase } from './servers.js';

const servers = [
  { label: 'embedded PostgreSQL 18', url: () => inject('postgresUrl') },
  { label: 'the machine PostgreSQL 15', url: () => LOCAL_PG15_URL },
];

/** Logins hold their privileges through one group role per scope, so no table's ACL grows with the number of logins. */
describe.each(servers)('scope groups on $label', (server) => {
  const on = useProviderFixture(server.url, server.label);
  const { test } = on;
  const inDatabase = (sql: string, values?: unknown[]) => adminQuery(withDatabase(server.url(), on.fx.database), sql, values);
  /** Every grantee named in a table's ACL. */
  const grantees = async (table: string) =>
    (await inDatabase(`SELECT DISTINCT a.grantee::regrole::text AS grantee FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = $1::regclass AND a.grantee <> 0`, [table])).rows.map((r) => r.grantee as string);
  /** The scope groups a login belongs to. */
  const groupsOf = async (role: string) =>
    (await adminQuery(server.url(), `SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = $1 AND g.rolname LIKE 'latchkey_scope_%'`, [role])).rows.map((r) => r.rolname as string);

  test('three logins of one scope add one entry to the table\'s ACL, not three, and each reads the table', async () => {
    const before = await grantees('demo.orders');
    const logins = [];
    for (let i = 0; i < 3; i++) logins.push((await on.fx.issue({ database: on.fx.database, tables: ['demo.orders'] })).login);
    const after = await grantees('demo.orders');
    const owner = (await inDatabase(`SELECT relowner::regrole::text AS owner FROM pg_class WHERE oid = 'demo.orders'::regclass`)).rows[0].owner as string;
    // The first GRANT on a table also writes its owner's implicit entry.
    const added = after.filter((g) => !before.includes(g) && g !== owner);
    expect(added).toEqual([expect.stringMatching(/^latchkey_scope_[0-9a-f]{24}$/)]);
    for (const login of logins) {
      expect(after).not.toContain(login.user);
      const client = await on.fx.connectAs(login);
      expect((await client.query('SELECT count(*)::int AS n FROM demo.orders')).rows[0].n).toBeGreaterThan(0);
    }
  });

  test('a table dropped and made again is readable by the next login of the same scope', async () => {
    const scope = { database: on.fx.database, tables: ['demo.customers'], columns: { 'demo.customers': ['id', 'name'] } };
    const first = (await on.fx.issue(scope)).login;
    expect((await (await on.fx.connectAs(first)).query('SELECT id, name FROM demo.customers WHERE id = 1')).rows).toEqual([{ id: 1, name: 'Ada Lovelace' }]);
    await inDatabase(`DROP TABLE demo.customers CASCADE; CREATE TABLE demo.customers (id int, name text, email text); INSERT INTO demo.customers VALUES (7, 'Grace', 'g@x')`);
    const second = (await on.fx.issue(scope)).login;
    expect((await (await on.fx.connectAs(second)).query('SELECT id, name FROM demo.customers')).rows).toEqual([{ id: 7, name: 'Grace' }]);
    await expect((await on.fx.connectAs(second)).query('SELECT email FROM demo.customers')).rejects.toMatchObject({ code: '42501' });
  });

  test('pruning drops the group of a scope nobody holds any more, with its privileges, and keeps a group in use', async () => {
    const kept = await on.fx.issue({ database: on.fx.database, tables: ['demo.orders'], columns: { 'demo.orders': ['id'] } });
    const gone = await on.fx.issue({ database: on.fx.database, tables: ['demo.orders'], columns: { 'demo.orders': ['status'] } });
    const [keptGroup] = await groupsOf(kept.providerRef);
    const [goneGroup] = await groupsOf(gone.providerRef);
    expect(keptGroup).toBeDefined();
    expect(goneGroup).toBeDefined();
    expect(keptGroup).not.toBe(goneGroup);

    await on.fx.provider.revoke({ grantId: 'g', providerRef: gone.providerRef, reason: 'revoked' });
    const pruned = await on.fx.provider.pruneUnused();
    expect(pruned).toContain(goneGroup);
    expect(pruned).not.toContain(keptGroup);
    expect(await roleExists(server.url(), goneGroup as string)).toBe(false);
    expect(await roleExists(server.url(), keptGroup as string)).toBe(true);
    expect((await (await on.fx.connectAs(kept.login)).query('SELECT id FROM demo.orders ORDER BY id LIMIT 1')).rows).toEqual([{ id: 1001 }]);
  });

  test('pruning waits for a login being created in the group, and then keeps the group it joined', async () => {
    const scope = { database: on.fx.database, tables: ['demo.orders'], columns: { 'demo.orders': ['total_cents'] } };
    const first = await on.fx.issue(scope);
    const [group] = await groupsOf(first.providerRef);
    await on.fx.provider.revoke({ grantId: 'g', providerRef: first.providerRef, reason: 'revoked' });
    // Another broker is creating a login of this scope: its transaction holds the lock shared and has joined the group, uncommitted.
    const creating = new pg.Client({ connectionString: withDatabase(server.url(), on.fx.database) });
    await creating.connect();
    const joiner = `lkt_joiner_${Date.now()}`;
    try {
      await creating.query('BEGIN');
      await creating.query('SELECT pg_advisory_xact_lock_shared(1819029607, 6779504)');
      await creating.query(`CREATE ROLE ${joiner} LOGIN IN ROLE ${group}`);
      let settled = false;
      const pruning = on.fx.provider.pruneUnused().finally(() => (settled = true));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(settled).toBe(false);
      await creating.query('COMMIT');
      expect(await pruning).not.toContain(group);
      expect(await roleExists(server.url(), group as string)).toBe(true);
    } finally {
      await creating.query(`DROP ROLE IF EXISTS ${joiner}`).catch(() => {});
      await creating.end();
    }
  });
});
