import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { seedDemoSchema } from '../../src/providers/postgres/index.js';
import { callApi, githubIssuer, startTestBroker, type TestBroker } from '../support/broker.js';
import { createMigratedDatabase } from '../support/database.js';
import { TestOidcIssuer } from '../support/oidc-issuer.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const MINUTE = 60_000;

// The grant lifecycle of PostgreSQL logins through the whole broker: expiry,
// revocation, outages, crashes and several replicas. The provider's own SQL is
// tested in test/providers/postgres.
describe('PostgreSQL logins through the broker', () => {
  const clock = new ManualClock(new Date());
  const tag = randomBytes(4).toString('hex');
  const database = `lkdemo_${tag}`;
  const marker = `lkm_e2e_${tag}`;
  const envVar = `LK_E2E_PG_${tag}`;
  let serverUrl: string;
  let proxy: TcpProxy;
  let issuer: TestOidcIssuer;
  let state: Awaited<ReturnType<typeof createMigratedDatabase>>;
  let t: TestBroker;
  let config: (gh: TestOidcIssuer) => Record<string, unknown>;

  const admin = async (sql: string, values: unknown[] = [], db = 'postgres') => {
    const client = new pg.Client({ connectionString: serverUrl.replace(/\/postgres$/, `/${db}`) });
    await client.connect();
    try {
      return await client.query(sql, values);
    } finally {
      await client.end();
    }
  };
  const managedRoles = async () =>
    (await admin('SELECT r.rolname FROM pg_roles r JOIN pg_auth_members m ON m.member = r.oid JOIN pg_roles g ON g.oid = m.roleid WHERE g.rolname = $1', [marker])).rows.map((r) => r.rolname as string);
  const roleExists = async (name: string) => (await admin('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount === 1;
  const grant = async (broker: TestBroker = t) =>
    broker.call('POST', '/v1/grants', { token: await issuer.githubToken(), body: { kind: 'postgres', target: 'warehouse', scope: { database, tables: ['demo.orders'] } } });
  const auditOf = async (grantId: string) => (await state.db.query('SELECT type FROM audit_events WHERE grant_id = $1 ORDER BY seq', [grantId])).rows.map((r) => r.type as string);
  const waitFor = async (what: () => Promise<boolean>, ms = 15_000) => {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      if (await what()) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  };

  beforeAll(async () => {
    serverUrl = inject('postgresUrl');
    await admin(`CREATE DATABASE ${database}`);
    await seedDemoSchema(serverUrl.replace(/\/postgres$/, `/${database}`));
    proxy = await TcpProxy.start(Number(new URL(serverUrl).port));
    const viaProxy = new URL(serverUrl);
    viaProxy.port = String(proxy.port);
    process.env[envVar] = viaProxy.toString();
    issuer = await TestOidcIssuer.start({ clock });
    state = await createMigratedDatabase();
    config = (gh) => ({
      issuers: [githubIssuer(gh)],
      targets: {
        warehouse: { kind: 'postgres', admin_url_env: envVar, host: '127.0.0.1', port: Number(new URL(serverUrl).port), sslmode: 'disable', databases: [database], tables: ['demo.*'], marker_role: marker },
      },
      rules: [{ name: 'etl-reads-orders', issuer: 'gh', when: { repository_id: '74', ref: 'refs/heads/main' }, allow: [{ kind: 'postgres', target: 'warehouse', databases: [database], tables: ['demo.orders'] }] }],
    });
    t = await startTestBroker({ configure: config, clock, issuer, databaseUrl: state.url });
  });

  afterAll(async () => {
    await t?.close();
    await issuer?.close();
    await proxy?.close();
    await state?.drop();
    for (const role of await managedRoles().catch(() => [])) await admin(`DROP ROLE IF EXISTS "${role}"`).catch(() => {});
    await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
  });

  // First, while the shared manual clock still agrees with the crashing process's real one.
  it('cleans up after a broker killed between creating the role and recording it', async () => {
    const crashConfig = { data_dir: t.dataDir, ...config(issuer) };
    const child = spawn(process.execPath, [fileURLToPath(new URL('../support/crash-broker.mjs', import.meta.url))], {
      env: { ...process.env, LATCHKEY_CRASH_CONFIG: JSON.stringify(crashConfig), LATCHKEY_CRASH_DATABASE_URL: state.url },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const m = /listening (\S+)/.exec(out);
        if (m) resolve(m[1] as string);
      });
      child.on('exit', (code) => reject(new Error(`crash broker exited early (${code})`)));
    });
    const exited = new Promise((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    const before = await managedRoles();
    await expect(callApi(url, 'POST', '/v1/grants', { token: await issuer.githubToken(), body: { kind: 'postgres', target: 'warehouse', scope: { database, tables: ['demo.orders'] } } })).rejects.toThrow();
    expect(await exited).toBe('SIGKILL');
    const orphans = (await managedRoles()).filter((r) => !before.includes(r));
    expect(orphans).toHaveLength(1); // the role exists, and no grant says it is active
    const stuck = await state.db.query<{ id: string }>("SELECT id FROM grants WHERE status = 'issuing'");
    expect(stuck.rowCount).toBe(1);

    // A restarted broker reconciles at start (its clock a little later than the crash).
    clock.advance(MINUTE);
    const restarted = await startTestBroker({ configure: config, clock, issuer, databaseUrl: state.url, broker: { issuingGraceMs: 0 } });
    try {
      expect(await managedRoles()).toEqual(before);
      const id = stuck.rows[0]!.id;
      const rows = (await state.db.query<{ type: string; body: string }>('SELECT type, body FROM audit_events WHERE grant_id = $1 ORDER BY seq', [id])).rows;
      expect(rows.map((r) => r.type)).toEqual(['grant.requested', 'grant.failed', 'grant.orphan_revoked']);
      expect(rows[1]!.body).toContain('broker_stopped_during_issue');
    } finally {
      await restarted.close();
    }
  });

  it('ends a login at expiry: the open session is killed, the role is gone, new logins fail', async () => {
    const res = await grant();
    expect(res.status).toBe(201);
    const cred = res.body.credential;
    const session = new pg.Client({ connectionString: cred.uri });
    session.on('error', () => {});
    await session.connect();
    expect((await session.query('SELECT count(*)::int AS n FROM demo.orders')).rows[0].n).toBeGreaterThan(0);

    clock.advance(16 * MINUTE);
    // No explicit call: the scheduler's own loop must notice within seconds.
    expect(await waitFor(async () => !(await roleExists(cred.user)))).toBe(true);
    await expect(session.query('SELECT 1')).rejects.toThrow();
    const relogin = new pg.Client({ connectionString: cred.uri });
    await expect(relogin.connect()).rejects.toThrow(/password authentication failed|does not exist/);
    const view = await t.call('GET', `/v1/grants/${res.body.id}`, { token: await issuer.githubToken() });
    expect(view.body).toMatchObject({ status: 'expired', endReason: 'expired' });
    expect(await auditOf(res.body.id)).toEqual(['grant.requested', 'grant.issued', 'grant.expired']);
  });

  it('ends a login immediately on DELETE, live session included', async () => {
    const res = await grant();
    const session = new pg.Client({ connectionString: res.body.credential.uri });
    session.on('error', () => {});
    await session.connect();
    const revoked = await t.call('DELETE', `/v1/grants/${res.body.id}`, { token: await issuer.githubToken() });
    expect(revoked.status).toBe(200);
    expect(revoked.body.status).toBe('revoked');
    expect(await roleExists(res.body.credential.user)).toBe(false);
    await expect(session.query('SELECT 1')).rejects.toThrow();
  });

  it('keeps retrying a revocation while the server is unreachable, visibly, until it succeeds', async () => {
    const res = await grant();
    const user = res.body.credential.user as string;
    proxy.cut();
    try {
      const revoked = await t.call('DELETE', `/v1/grants/${res.body.id}`, { token: await issuer.githubToken() });
      expect(revoked.status).toBe(202);
      expect(revoked.body.status).toBe('revoking');
      expect(revoked.body.revocation.attempts).toBe(1);
      expect(revoked.body.revocation.lastError).toBeTruthy();
      await t.broker.scheduler.tick();
      const metrics = await t.call('GET', '/metrics');
      expect(metrics.body).toMatch(/latchkey_revocations_pending 1/);
    } finally {
      proxy.restore();
    }
    expect(await roleExists(user)).toBe(true); // not yet: the retry is due later
    clock.advance(2 * MINUTE);
    await t.broker.scheduler.tick();
    expect(await roleExists(user)).toBe(false);
    const view = await t.call('GET', `/v1/grants/${res.body.id}`, { token: await issuer.githubToken() });
    expect(view.body.status).toBe('revoked');
    expect(await auditOf(res.body.id)).toEqual(['grant.requested', 'grant.issued', 'grant.revoke_failed', 'grant.revoked']);
  });

  it('drops the role at once when the result cannot be recorded', async () => {
    const before = await managedRoles();
    const c = new pg.Client({ connectionString: state.url });
    await c.connect();
    await c.query("ALTER TABLE audit_events ADD CONSTRAINT result_down CHECK (type <> 'grant.issued') NOT VALID");
    try {
      const res = await grant();
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('audit_unavailable');
      expect(res.body.credential).toBeUndefined();
    } finally {
      await c.query('ALTER TABLE audit_events DROP CONSTRAINT result_down');
      await c.end();
    }
    expect(await managedRoles()).toEqual(before);
  });

  it('with two replicas on one database, 100 logins expiring together are each dropped exactly once', async () => {
    const second = await startTestBroker({ configure: config, clock, issuer, databaseUrl: state.url });
    try {
      const ids: string[] = [];
      for (let batch = 0; batch < 10; batch++) {
        const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => grant((batch + i) % 2 ? t : second)));
        for (const a of answers) {
          expect(a.status).toBe(201);
          ids.push(a.body.id);
        }
      }
      expect((await managedRoles()).length).toBeGreaterThanOrEqual(100);
      clock.advance(16 * MINUTE);
      await Promise.all([t.broker.scheduler.tick(), second.broker.scheduler.tick(), t.broker.scheduler.tick(), second.broker.scheduler.tick()]);
      expect(await waitFor(async () => (await managedRoles()).length === 0)).toBe(true);
      const events = await state.db.query<{ grant_id: string; type: string }>(
        "SELECT grant_id, type FROM audit_events WHERE grant_id = ANY($1::uuid[]) AND type IN ('grant.expired', 'grant.revoke_failed')",
        [ids],
      );
      expect(events.rows.filter((e) => e.type === 'grant.revoke_failed')).toEqual([]);
      const perGrant = new Map<string, number>();
      for (const e of events.rows) perGrant.set(e.grant_id, (perGrant.get(e.grant_id) ?? 0) + 1);
      expect(perGrant.size).toBe(100);
      expect([...perGrant.values()].every((n) => n === 1)).toBe(true);
    } finally {
      await second.close();
    }
  }, 120_000);
});
