import { describe, expect, inject } from 'vitest';
import { LOCAL_PG15_URL, adminQuery, roleExists, useProviderFixture, withDatabase } from '../providers/postgres/servers.js';

const servers = [
  { label: 'embedded PostgreSQL 18', url: () => inject('postgresUrl') },
  { label: 'the machine PostgreSQL 15', url: () => LOCAL_PG15_URL },
];

// Attack (issue 11): a login on a target that lets it CREATE (PostgreSQL 14's default for
// `public`, or a schema that offers it) leaves code or data behind. Revocation used to
// REASSIGN OWNED it to the admin, so a SECURITY DEFINER function ran as the admin for any
// later login. Nothing a login made may survive it.
describe.each(servers)('what a revoked login made on $label', (server) => {
  const on = useProviderFixture(server.url, server.label);
  const { test } = on;

  test('is gone after revoke: tables, functions, views, sequences, types and large objects, in every database', async () => {
    const { login, providerRef } = await on.fx.issue({ database: on.fx.database, tables: ['demo.orders'] });
    const main = withDatabase(on.fx.serverUrl, on.fx.database);
    const other = withDatabase(on.fx.serverUrl, on.fx.otherDatabase);
    await adminQuery(main, 'GRANT CREATE ON SCHEMA public TO PUBLIC');
    await adminQuery(other, 'GRANT CREATE ON SCHEMA public TO PUBLIC');
    const session = await on.fx.connectAs(login);
    await session.query('SET default_transaction_read_only = off');
    await session.query(`
      CREATE TABLE public.adv_table (id int);
      CREATE SEQUENCE public.adv_seq;
      CREATE TYPE public.adv_type AS (a int);
      CREATE VIEW public.adv_view AS SELECT 1 AS one;
      CREATE FUNCTION public.adv_definer() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT count(*) FROM demo.payments';
      SELECT lo_from_bytea(4242421, 'left behind'::bytea);
      GRANT SELECT ON LARGE OBJECT 4242421 TO PUBLIC;`);
    const elsewhere = await on.fx.connectAs({ ...login, database: on.fx.otherDatabase });
    await elsewhere.query('SET default_transaction_read_only = off');
    await elsewhere.query(`CREATE FUNCTION public.adv_elsewhere() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'`);

    await on.fx.provider.revoke({ grantId: 'g', providerRef, reason: 'revoked' });

    expect(await roleExists(on.fx.serverUrl, providerRef)).toBe(false);
    const left = await adminQuery(
      main,
      `SELECT relname AS name FROM pg_class WHERE relname IN ('adv_table', 'adv_seq', 'adv_view')
       UNION ALL SELECT typname FROM pg_type WHERE typname = 'adv_type'
       UNION ALL SELECT proname FROM pg_proc WHERE proname = 'adv_definer'
       UNION ALL SELECT 'large object ' || oid FROM pg_largeobject_metadata WHERE oid = 4242421`,
    );
    expect(left.rows).toEqual([]);
    expect((await adminQuery(other, `SELECT proname FROM pg_proc WHERE proname = 'adv_elsewhere'`)).rows).toEqual([]);

    // A later login granted only demo.orders finds nothing to call.
    const later = await on.fx.issue({ database: on.fx.database, tables: ['demo.orders'] });
    const laterSession = await on.fx.connectAs(later.login);
    await expect(laterSession.query('SELECT public.adv_definer()')).rejects.toMatchObject({ code: '42883' });
  });
});
