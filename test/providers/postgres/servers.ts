import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, it } from 'vitest';
import { systemClock } from '../../../src/clock.js';
import type { PostgresCredential } from '../../../src/providers/postgres/credential.js';
import { postgresKind, seedDemoSchema, type PostgresAllowance, type PostgresTargetSettings } from '../../../src/providers/postgres/index.js';
import type { PostgresTargetProvider } from '../../../src/providers/postgres/target.js';
import type { IssuedCredential, ProviderDeps } from '../../../src/providers/provider.js';

/** The machine's PostgreSQL 15 (trust auth), when it runs. */
export const LOCAL_PG15_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/** Resolves to null when the server answers, else why not. */
export async function unreachableReason(url: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (err) {
    return `${url.replace(/:[^:@/]*@/, ':***@')} is not reachable (${(err as Error).message})`;
  } finally {
    await client.end().catch(() => {});
  }
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function adminQuery(url: string, sql: string, values?: unknown[]): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(sql, values);
  } finally {
    await client.end();
  }
}

/** Whether a role of that name exists on the server. */
export async function roleExists(url: string, role: string): Promise<boolean> {
  return (await adminQuery(url, 'SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;
}

/** The enclosing describe's provider fixture on one server, and a `test` that skips (saying why) when that server does not answer. */
export interface ProviderFixtureOnServer {
  readonly fx: ProviderFixture;
  readonly skipReason: string | null;
  test(name: string, fn: () => Promise<void>): void;
}

/** Sets up a provider fixture on `url` before the enclosing describe's tests and tears it down after them. */
export function useProviderFixture(url: () => string, label: string): ProviderFixtureOnServer {
  let fx: ProviderFixture | undefined;
  let skipReason: string | null = null;
  beforeAll(async () => {
    skipReason = await unreachableReason(url());
    if (skipReason) {
      console.warn(`skipping PostgreSQL provider tests on ${label}: ${skipReason}`);
      return;
    }
    fx = await setUpProviderFixture(url());
  });
  afterAll(async () => {
    await fx?.teardown();
  });
  return {
    get fx() {
      if (!fx) throw new Error(`no provider fixture on ${label}: ${skipReason ?? 'not set up yet'}`);
      return fx;
    },
    get skipReason() {
      return skipReason;
    },
    test: (name, fn) =>
      it(name, async (ctx) => {
        if (skipReason) ctx.skip(skipReason);
        await fn();
      }),
  };
}

export const testDeps = (): ProviderDeps => ({
  clock: systemClock,
  logger: pino({ level: 'silent' }),
  dataDir: mkdtempSync(join(tmpdir(), 'latchkey-pg-provider-')),
  devMode: false,
});

/** A database with the demo schema, a `secret` schema, a second database, a target on them, and its provider. */
export interface ProviderFixture {
  readonly serverUrl: string;
  readonly database: string;
  readonly otherDatabase: string;
  readonly marker: string;
  readonly settings: PostgresTargetSettings;
  readonly allow: PostgresAllowance;
  readonly provider: PostgresTargetProvider;
  /** Runs the scope through the schema and checkScope as the core does, then issues. */
  issue(scope: Record<string, unknown>, options?: { expiresAt?: Date; grantId?: string; subject?: string }): Promise<IssuedCredential & { login: PostgresCredential }>;
  /** A pg client logged in with the credential; server errors on it are collected, not thrown. */
  connectAs(login: PostgresCredential): Promise<pg.Client>;
  teardown(): Promise<void>;
}

export interface FixtureOptions {
  /** The admin URL the provider gets (default: the server's superuser), made once the databases exist. */
  readonly adminUrl?: (database: string, otherDatabase: string) => Promise<string>;
}

export async function setUpProviderFixture(serverUrl: string, overrides: Partial<Record<string, unknown>> = {}, options: FixtureOptions = {}): Promise<ProviderFixture> {
  const tag = randomBytes(4).toString('hex');
  const database = `lkpg_${tag}`;
  const otherDatabase = `lkpg_${tag}_other`;
  const marker = `lkm_${tag}`;
  await adminQuery(serverUrl, `CREATE DATABASE ${database}`);
  await adminQuery(serverUrl, `CREATE DATABASE ${otherDatabase}`);
  await seedDemoSchema(withDatabase(serverUrl, database));
  await adminQuery(
    withDatabase(serverUrl, database),
    `CREATE SCHEMA secret; CREATE TABLE secret.keys (id int, material text); INSERT INTO secret.keys VALUES (1, 'do not read');`,
  );
  const envName = `LATCHKEY_TEST_PG_ADMIN_${tag}`;
  process.env[envName] = options.adminUrl ? await options.adminUrl(database, otherDatabase) : serverUrl;
  const settings = postgresKind.targetSchema.parse({
    admin_url_env: envName,
    databases: [database, otherDatabase],
    tables: ['demo.*', 'secret.*'],
    schemas: ['demo', 'secret'],
    privileges: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
    connection_limit: 3,
    role_settings: { statement_timeout: '30s', idle_in_transaction_session_timeout: 60000 },
    role_prefix: 'lkt_',
    marker_role: marker,
    ...overrides,
  });
  const allow = postgresKind.allowSchema.parse({
    tables: ['demo.orders', 'demo.customers'],
    columns: { 'demo.customers': ['id', 'name'] },
    privileges: ['SELECT', 'INSERT'],
  });
  const provider = (await postgresKind.open('test-db', settings, testDeps())) as PostgresTargetProvider;
  const clients: pg.Client[] = [];

  return {
    serverUrl,
    database,
    otherDatabase,
    marker,
    settings,
    allow,
    provider,
    async issue(rawScope, options = {}) {
      const scope = postgresKind.scopeSchema.parse(rawScope);
      const failure = postgresKind.checkScope({ target: settings, allow, scope, claims: {} });
      if (failure) throw new Error(`test scope refused: ${failure.message}`);
      const now = new Date();
      const issued = await provider.issue({
        grantId: options.grantId ?? randomUUID(),
        requestId: randomUUID(),
        subject: options.subject ?? 'user:ada@example.com',
        issuerName: 'test',
        claims: {},
        allow,
        scope,
        issuedAt: now,
        expiresAt: options.expiresAt ?? new Date(now.getTime() + 15 * 60_000),
      });
      return { ...issued, login: issued.credential as unknown as PostgresCredential };
    },
    async connectAs(login) {
      const client = new pg.Client({ host: login.host, port: login.port, user: login.user, password: login.password, database: login.database });
      // A terminated session surfaces as an error event; the test looks at the failed query instead.
      client.on('error', () => {});
      await client.connect();
      clients.push(client);
      return client;
    },
    async teardown() {
      await Promise.all(clients.map((c) => c.end().catch(() => {})));
      for (const artifact of await provider.listIssued()) {
        await provider.revoke({ grantId: artifact.grantId ?? '', providerRef: artifact.providerRef, reason: 'revoked' });
      }
      await provider.pruneUnused();
      await provider.close();
      await adminQuery(serverUrl, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await adminQuery(serverUrl, `DROP DATABASE IF EXISTS ${otherDatabase} WITH (FORCE)`);
      await adminQuery(serverUrl, `DROP ROLE IF EXISTS ${marker}`);
      delete process.env[envName];
    },
  };
}
