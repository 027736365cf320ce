import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { run as migrateVerb } from '../../src/cli/migrate.js';
import { githubIssuer, startTestBroker, type TestBroker } from '../support/broker.js';

// deploy/runtime-role.sql, run as written (role names swapped for unique ones,
// since roles are cluster-wide), against a database the owner role migrated;
// then a broker runs as the runtime role and does its whole job.
const RUNTIME_ROLE_SQL = readFileSync(new URL('../../deploy/runtime-role.sql', import.meta.url), 'utf8');

function urlFor(adminUrl: string, role: string, password: string, database: string): string {
  const url = new URL(adminUrl);
  url.username = role;
  url.password = password;
  url.pathname = `/${database}`;
  return url.toString();
}

async function asRole<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The SQLSTATE a statement fails with, or 'ok'. */
async function outcome(client: pg.Client, sql: string): Promise<string> {
  try {
    await client.query(sql);
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

describe('deploy/runtime-role.sql', () => {
  const adminUrl = inject('postgresUrl');
  const suffix = randomBytes(4).toString('hex');
  const owner = `lk_owner_${suffix}`;
  const runtime = `lk_runtime_${suffix}`;
  const database = `lk_roles_${suffix}`;
  const ownerPassword = randomBytes(12).toString('hex');
  const runtimePassword = randomBytes(12).toString('hex');
  const ownerUrl = urlFor(adminUrl, owner, ownerPassword, database);
  const runtimeUrl = urlFor(adminUrl, runtime, runtimePassword, database);
  const workDir = mkdtempSync(join(tmpdir(), 'latchkey-roles-'));
  let broker: TestBroker | undefined;

  beforeAll(async () => {
    // What deploy/README.md tells an administrator to run once.
    await asRole(adminUrl, async (c) => {
      await c.query(`CREATE ROLE ${owner} LOGIN PASSWORD '${ownerPassword}'`);
      await c.query(`CREATE ROLE ${runtime} LOGIN PASSWORD '${runtimePassword}'`);
      await c.query(`CREATE DATABASE ${database} OWNER ${owner}`);
    });
    // The migration step, as the owner, as the Helm chart's hook Job runs it: `latchkey migrate --database-url-file`.
    const ownerUrlFile = join(workDir, 'owner-url');
    writeFileSync(ownerUrlFile, ownerUrl, { mode: 0o600 });
    let out = '';
    const code = await migrateVerb(['--database-url-file', ownerUrlFile], {
      stdout: { write: (t: string) => (out += t) },
      stderr: { write: () => true },
      env: {},
      cwd: workDir,
    });
    expect(code, out).toBe(0);
    expect(out).toMatch(/^schema at version \d+ \(applied /);
    await asRole(ownerUrl, (c) => c.query(RUNTIME_ROLE_SQL.replaceAll('latchkey_runtime', runtime)));
  });

  afterAll(async () => {
    await broker?.close();
    rmSync(workDir, { recursive: true, force: true });
    await asRole(adminUrl, async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await c.query(`DROP ROLE IF EXISTS ${runtime}`);
      await c.query(`DROP ROLE IF EXISTS ${owner}`);
    });
  });

  it('grants the runtime role something on every table of the migrated schema (a new table needs a line in the file)', async () => {
    const tables = await asRole(ownerUrl, async (c) =>
      (await c.query<{ tablename: string; usable: boolean }>(
        `SELECT tablename, has_table_privilege($1, format('%I.%I', schemaname, tablename), 'SELECT') AS usable
           FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`,
        [runtime],
      )).rows,
    );
    expect(tables.length).toBeGreaterThanOrEqual(5);
    expect(tables.filter((t) => !t.usable).map((t) => t.tablename)).toEqual([]);
    for (const t of tables) expect(RUNTIME_ROLE_SQL).toContain(` ${t.tablename}`);
  });

  it('lets the runtime role change nothing in the schema and nothing already in the audit log', async () => {
    await asRole(runtimeUrl, async (c) => {
      const refused = {
        'CREATE TABLE': await outcome(c, 'CREATE TABLE mine (x int)'),
        'CREATE TEMP TABLE': await outcome(c, 'CREATE TEMP TABLE mine (x int)'),
        'ALTER TABLE audit_events': await outcome(c, 'ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only'),
        'DROP TRIGGER': await outcome(c, 'DROP TRIGGER audit_events_append_only ON audit_events'),
        'UPDATE audit_events': await outcome(c, "UPDATE audit_events SET outcome = 'x'"),
        'DELETE audit_events': await outcome(c, 'DELETE FROM audit_events'),
        'TRUNCATE audit_events': await outcome(c, 'TRUNCATE audit_events'),
        'DELETE audit_checkpoints': await outcome(c, 'DELETE FROM audit_checkpoints'),
        'DELETE grants': await outcome(c, 'DELETE FROM grants'),
        'INSERT latchkey_migrations': await outcome(c, "INSERT INTO latchkey_migrations (version, name) VALUES (999, 'x')"),
      };
      // 42501: insufficient_privilege; 42P01 would mean the table is missing, which is also a failure here.
      expect(refused).toEqual(Object.fromEntries(Object.keys(refused).map((k) => [k, '42501'])));
    });
  });

  it('runs a broker as the runtime role: start-up, grants, single-use tokens, revocation and the audit log all work', async () => {
    broker = await startTestBroker({
      databaseUrl: runtimeUrl,
      configure: (gh) => ({
        issuers: [githubIssuer(gh)],
        targets: { mesh: { kind: 'certificate', trust_domain: 'example.org' } },
        rules: [
          {
            name: 'octo-repo-deploys',
            issuer: 'gh',
            when: { repository_id: '74', repository_owner_id: '65', ref: 'refs/heads/main', environment: 'prod', event_name: 'push', runner_environment: 'github-hosted' },
            allow: [{ kind: 'certificate', target: 'mesh', spiffe_id: 'spiffe://{trust_domain}/gh/{repository_id}' }],
          },
        ],
      }),
    });
    expect((await broker.call('GET', '/readyz')).status).toBe(200);

    const token = await broker.issuer.githubToken();
    const body = { kind: 'certificate', target: 'mesh', scope: { generate: true } };
    const granted = await broker.call('POST', '/v1/grants', { token, body });
    expect(granted.status, JSON.stringify(granted.body)).toBe(201);
    expect((await broker.call('POST', '/v1/grants', { token, body })).status).toBe(401);

    const revoked = await broker.call('DELETE', `/v1/grants/${granted.body.id}`, { token: await broker.issuer.githubToken() });
    expect(revoked.status, JSON.stringify(revoked.body)).toBeLessThan(300);
    await broker.broker.reconcile();

    const events = await asRole(runtimeUrl, async (c) =>
      (await c.query<{ type: string }>('SELECT type FROM audit_events WHERE grant_id = $1 ORDER BY seq', [granted.body.id])).rows.map((r) => r.type),
    );
    expect(events).toContain('grant.issued');
    expect(events.some((t) => t.includes('revoke'))).toBe(true);
  });
});
