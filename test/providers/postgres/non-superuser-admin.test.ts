import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { LOCAL_PG15_URL, adminQuery, setUpProviderFixture, unreachableReason, withDatabase, type ProviderFixture } from './servers.js';

/**
 * Managed PostgreSQL (RDS, Cloud SQL) gives the broker a CREATEROLE role, not a
 * superuser. Everything must still work, and the admin must never count as a
 * role the broker made (from 16 on it is an ADMIN member of the marker).
 */
describe.each([
  { label: 'embedded PostgreSQL 18', url: () => inject('postgresUrl') },
  { label: 'the machine PostgreSQL 15', url: () => LOCAL_PG15_URL },
])('with a CREATEROLE admin that is not a superuser, on $label', (server) => {
  let fx: ProviderFixture;
  let skipReason: string | null = null;
  const admin = `lkadmin_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');

  beforeAll(async () => {
    skipReason = await unreachableReason(server.url());
    if (skipReason) return;
    await adminQuery(server.url(), `CREATE ROLE ${admin} LOGIN CREATEROLE PASSWORD '${password}'`);
    fx = await setUpProviderFixture(server.url(), {}, {
      async adminUrl(database) {
        // What an operator grants the broker: the tables it may hand out, with GRANT OPTION.
        await adminQuery(
          withDatabase(server.url(), database),
          `GRANT CONNECT ON DATABASE ${database} TO ${admin} WITH GRANT OPTION;
           GRANT USAGE ON SCHEMA demo TO ${admin} WITH GRANT OPTION;
           GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA demo TO ${admin} WITH GRANT OPTION;`,
        );
        const url = new URL(server.url());
        url.username = admin;
        url.password = password;
        return url.toString();
      },
    });
  });
  afterAll(async () => {
    if (skipReason) return;
    await fx?.teardown();
    await adminQuery(server.url(), `DROP OWNED BY ${admin}; DROP ROLE IF EXISTS ${admin}`);
  });

  it('issues a working login, lists only its logins, and revokes it completely', async (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const { login, providerRef } = await fx.issue({ database: fx.database, tables: ['demo.orders'] }, { grantId: 'grant-1' });
    const session = await fx.connectAs(login);
    expect((await session.query('SELECT count(*)::int AS n FROM demo.orders')).rows).toEqual([{ n: 5 }]);
    await session.query('SET default_transaction_read_only = off');
    await session.query('CREATE TEMP TABLE scratch (id int)');

    expect(await fx.provider.listIssued()).toEqual([{ providerRef, grantId: 'grant-1' }]);
    await expect(fx.provider.revoke({ grantId: 'x', providerRef: admin, reason: 'orphan' })).rejects.toMatchObject({ code: 'provider_misconfigured' });

    await fx.provider.revoke({ grantId: 'grant-1', providerRef, reason: 'revoked' });
    await expect(session.query('SELECT 1')).rejects.toThrow(/terminat|connection error/);
    expect((await adminQuery(server.url(), 'SELECT 1 FROM pg_roles WHERE rolname = $1', [providerRef])).rowCount).toBe(0);
    expect(await fx.provider.listIssued()).toEqual([]);
    expect((await adminQuery(server.url(), 'SELECT 1 FROM pg_roles WHERE rolname = $1', [admin])).rowCount).toBe(1);
  });
});
