import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from 'pino';
import { InvalidScope, PolicyDenied, ProviderMisconfigured, ProviderUnavailable } from '../../errors.js';
import { Secret } from '../../secret.js';
import type { IssueInput, IssuedArtifact, IssuedCredential, ProviderDeps, RevokeInput, TargetProvider } from '../provider.js';
import { buildPostgresCredential } from './credential.js';
import { sqlState, toProviderError } from './pg-errors.js';
import { makeRoleName } from './role-name.js';
import { scramSha256Verifier } from './scram.js';
import { checkPostgresScope, resolveScope, type ResolvedScope, type ResolvedTable } from './scope.js';
import type { PostgresAllowance, PostgresScope, PostgresTargetSettings } from './settings.js';
import { displayIdentifier, quoteQualifiedName } from './sql-identifiers.js';

const { escapeIdentifier, escapeLiteral } = pg;

/** Connections per database the broker keeps to a target. */
const POOL_SIZE = 8;
/**
 * Advisory lock (per database, held to commit) around every statement that
 * rewrites an ACL. PostgreSQL fails concurrent GRANTs on one object with
 * "tuple concurrently updated"; taking this lock first makes them queue.
 * The two keys spell "lkpg" and "acl".
 */
const ACL_LOCK = '1819029607, 6382444';
/**
 * Advisory lock (per database, held to commit) between creating logins and
 * pruning scope groups: each login's creation holds it shared, so logins never
 * wait for each other; pruning a group takes it exclusively, so no login can
 * join the group between pruning's "no member" and its DROP ROLE. "lkpg", "grp".
 */
const SCOPE_GROUP_LOCK = '1819029607, 6779504';
/** SQLSTATEs worth one more try of the same transaction. */
const RETRYABLE_SQLSTATES = new Set(['XX000', '40001', '40P01']);
const MAX_TRANSACTION_ATTEMPTS = 5;
/** How long revoke waits for terminated sessions to be gone before it retries later. */
const TERMINATION_ROUNDS = 20;
const COMMENT_PREFIX = 'latchkey grant ';
/** Role names this provider can have made (see makeRoleName); anything else is refused by revoke. */
const ROLE_NAME = /^[a-z][a-z0-9_]{0,62}$/;

interface ServerFacts {
  /** `server_version_num`, e.g. 180001. */
  readonly version: number;
  /** Whether the admin role is a superuser (else a CREATEROLE role, as on RDS or Cloud SQL). */
  readonly superuser: boolean;
}

/**
 * A role the broker made: a plain (not ADMIN OPTION) member of the marker,
 * not a superuser, not the admin itself. From PostgreSQL 16 a non-superuser
 * admin is an ADMIN member of the marker it created; that must never count.
 */
const managedRole = (markerParameter: string) =>
  `(EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
             WHERE m.member = r.oid AND g.rolname = ${markerParameter} AND NOT m.admin_option)
    AND NOT r.rolsuper AND r.rolname <> current_user)`;

/** A member of role `roleOid` other than the admin itself (which may be one, to manage it) and not by ADMIN OPTION alone. */
const otherMember = (roleOid: string) =>
  `EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.roleid = ${roleOid} AND NOT m.admin_option
             AND m.member <> (SELECT oid FROM pg_roles WHERE rolname = current_user))`;

/** Where the admin URL points, without its secret. */
interface AdminEndpoint {
  readonly host: string;
  readonly port: number;
  readonly database: string;
}

/** Reads the admin URL from the env var or file the target names. Never echoes the value. */
function readAdminUrl(name: string, settings: PostgresTargetSettings, env: NodeJS.ProcessEnv): Secret<string> {
  let value: string | undefined;
  if (settings.admin_url_env) {
    value = env[settings.admin_url_env];
    if (!value) throw new ProviderMisconfigured(`postgres target ${name}: environment variable ${settings.admin_url_env} (admin_url_env) is not set`);
  } else if (settings.admin_url_file) {
    try {
      value = readFileSync(settings.admin_url_file, 'utf8').trim();
    } catch (err) {
      throw new ProviderMisconfigured(`postgres target ${name}: cannot read admin_url_file ${settings.admin_url_file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  if (!value) throw new ProviderMisconfigured(`postgres target ${name}: the admin URL is empty`);
  return new Secret(value);
}

function parseAdminUrl(name: string, url: Secret<string>): AdminEndpoint & { password: string } {
  let parsed: URL;
  try {
    parsed = new URL(url.reveal());
  } catch {
    throw new ProviderMisconfigured(`postgres target ${name}: the admin URL is not a URL (expected postgresql://user:password@host:port/database)`);
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new ProviderMisconfigured(`postgres target ${name}: the admin URL must start with postgresql:// (got ${parsed.protocol}//)`);
  }
  let database: string;
  let password: string;
  try {
    database = decodeURIComponent(parsed.pathname.slice(1)) || 'postgres';
    password = decodeURIComponent(parsed.password);
  } catch {
    // Never the URL itself in the message: it holds the password.
    throw new ProviderMisconfigured(`postgres target ${name}: the admin URL has a malformed %-escape in its password or database name (percent-encode "%" as %25)`);
  }
  return { host: parsed.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost', port: parsed.port ? Number(parsed.port) : 5432, database, password };
}

/**
 * One configured PostgreSQL target: issues a fresh role per grant and drops it
 * again, sessions, privileges, owned objects and all.
 */
export class PostgresTargetProvider implements TargetProvider<PostgresAllowance, PostgresScope> {
  readonly kind = 'postgres';
  readonly revokeOnExpiry = true;
  readonly name: string;
  readonly #settings: PostgresTargetSettings;
  readonly #logger: Logger;
  readonly #adminUrl: Secret<string>;
  readonly #admin: AdminEndpoint;
  /** Strings cut out of any error message (the admin password). */
  readonly #secrets: readonly string[];
  readonly #pools = new Map<string, pg.Pool>();
  #facts: Promise<ServerFacts> | undefined;
  /** Scope groups being made or granted anew, by name. */
  readonly #preparingGroups = new Map<string, Promise<void>>();

  private constructor(name: string, settings: PostgresTargetSettings, deps: ProviderDeps, adminUrl: Secret<string>) {
    this.name = name;
    this.#settings = settings;
    this.#logger = deps.logger;
    this.#adminUrl = adminUrl;
    const { password, ...endpoint } = parseAdminUrl(name, adminUrl);
    this.#admin = endpoint;
    this.#secrets = [password, adminUrl.reveal()].filter((s) => s.length > 0);
  }

  /**
   * Opens the target: reads the admin URL, connects, makes sure the marker
   * role exists. A server that is down does not fail the open; it is retried
   * on first use and `ready()` says false until then. A missing URL does.
   */
  static async open(name: string, settings: PostgresTargetSettings, deps: ProviderDeps, env: NodeJS.ProcessEnv = process.env): Promise<PostgresTargetProvider> {
    const provider = new PostgresTargetProvider(name, settings, deps, readAdminUrl(name, settings, env));
    try {
      await provider.#serverFacts();
    } catch (err) {
      deps.logger.warn({ target: name, err: (err as Error).message }, 'postgres target not reachable at start; will retry on use');
    }
    return provider;
  }

  /** Non-secret facts about where logins point. */
  publicInfo(): Readonly<Record<string, unknown>> {
    return { host: this.#clientHost(), port: this.#clientPort(), databases: this.#settings.databases, sslmode: this.#settings.sslmode };
  }

  async ready(): Promise<boolean> {
    try {
      await this.#serverFacts();
      await this.#pool(this.#admin.database).query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.end().catch(() => {})));
  }

  /**
   * Creates the login in one transaction (one round trip) on the requested
   * database: role with a SCRAM verifier, comment with the grant id,
   * settings, CONNECT, USAGE, the privileges on exactly the tables/columns.
   * A table or column that does not exist fails its GRANT, so nothing is
   * created, and the error is an InvalidScope naming it.
   */
  async issue(input: IssueInput<PostgresAllowance, PostgresScope>): Promise<IssuedCredential> {
    // The core checked the scope already; checking again keeps the target's allow-list true even if it did not.
    const denied = checkPostgresScope({ target: this.#settings, allow: input.allow, scope: input.scope, claims: input.claims });
    if (denied) throw new PolicyDenied(denied.message, { reasons: [denied] });
    const scope = resolveScope(input.scope, input.allow);
    const facts = await this.#serverFacts();

    const password = new Secret(randomBytes(32).toString('base64url'));
    const verifier = await scramSha256Verifier(password, { iterations: this.#settings.scram_iterations });
    const role = makeRoleName(this.#settings.role_prefix, input.subject);

    const group = scopeGroupName(this.#settings.marker_role, scope);
    const createLogin = () => this.#createLogin(role, verifier, group, scope, input, facts);
    try {
      const privilegesHeld = await createLogin().catch(async (err: unknown) => {
        // First login of this scope on this server (its group does not exist): make the group, then the login.
        if (sqlState(err) !== '42704') throw err;
        await this.#grantScopeGroup(group, scope, facts);
        return createLogin();
      });
      // The scope's group lost a privilege (its table was dropped and made again): grant it anew before answering.
      if (!privilegesHeld) {
        await this.#grantScopeGroup(group, scope, facts).catch(async (err: unknown) => {
          await this.revoke({ grantId: input.grantId, providerRef: role, reason: 'revoked' }).catch(() => {});
          throw err;
        });
      }
    } catch (err) {
      const state = sqlState(err);
      if (state === '3D000') {
        throw new InvalidScope(`database ${scope.database} does not exist on target ${this.name}`, { database: scope.database });
      }
      // Something the scope names is missing and the transaction rolled back; find which, to say so.
      if (state === '42P01' || state === '42703' || state === '3F000') await this.#checkCatalog(scope);
      throw err;
    }

    const credential = buildPostgresCredential({
      host: this.#clientHost(),
      port: this.#clientPort(),
      database: scope.database,
      user: role,
      password,
      sslmode: this.#settings.sslmode,
      expiresAt: input.expiresAt,
    });
    const columns = scope.tables.flatMap((t) => (t.columns ?? []).map((c) => `${t.display}.${displayIdentifier(c)}`));
    return {
      credential: { ...credential },
      providerRef: role,
      auditDetails: {
        role,
        database: scope.database,
        tables: scope.tables.map((t) => t.display),
        ...(columns.length > 0 ? { columns } : {}),
        privileges: [...scope.privileges],
      },
    };
  }

  /**
   * Removes a login, in an order that leaves no gap: NOLOGIN (no new
   * sessions), terminate its sessions on the whole server, then in every
   * database where it holds anything DROP OWNED (which drops what it made
   * and revokes its privileges), then DROP ROLE. Nothing it made is ever
   * reassigned: handed to the admin, a login's SECURITY DEFINER function or
   * view would run with the admin's rights for every later login. Something
   * that cannot be dropped (another role's object depends on it) fails the
   * revocation, which is retried and shown on the grant. A role that does not
   * exist is success, so a second run, or a run after a crash halfway, is too.
   */
  async revoke(input: RevokeInput): Promise<void> {
    const role = input.providerRef;
    if (!ROLE_NAME.test(role)) throw new TypeError(`postgres revoke: ${JSON.stringify(role)} is not a role name latchkey makes`);
    await this.#serverFacts();
    const admin = this.#pool(this.#admin.database);
    const doing = `revoking role ${role}`;
    const found = await this.#query(admin, doing, () =>
      admin.query<{ oid: string; managed: boolean }>(
        `SELECT r.oid::text AS oid, ${managedRole('$2')} AS managed FROM pg_roles r WHERE r.rolname = $1`,
        [role, this.#settings.marker_role],
      ),
    );
    const row = found.rows[0];
    if (!row) return;
    if (!row.managed) {
      throw new ProviderMisconfigured(`postgres target ${this.name}: refusing to drop role ${role}: it is not a member of ${this.#settings.marker_role}, so latchkey did not make it`, { role });
    }
    const quoted = escapeIdentifier(role);
    await this.#query(admin, doing, () => admin.query(`ALTER ROLE ${quoted} NOLOGIN`)).catch(ignoreMissingRole);
    await this.#terminateSessions(row.oid, role);
    for (let round = 0; ; round++) {
      for (const database of await this.#databasesHolding(row.oid)) {
        await this.#dropOwnedIn(database, quoted, `${doing} in database ${database}`);
      }
      try {
        await this.#query(admin, doing, () => admin.query(`DROP ROLE IF EXISTS ${quoted}`));
        break;
      } catch (err) {
        // Something new depends on the role (it was granted more meanwhile): clean again, a few times.
        if (sqlState(err) !== '2BP01' || round >= 2) throw err;
      }
    }
    // A session that authenticated just before NOLOGIN may have registered late; it must not outlive its role.
    await this.#terminateSessions(row.oid, role);
    this.#logger.info({ target: this.name, role, grantId: input.grantId, reason: input.reason }, 'postgres role dropped');
  }

  /** Every role in the marker group, with the grant id from its comment. */
  async listIssued(): Promise<IssuedArtifact[]> {
    await this.#serverFacts();
    const admin = this.#pool(this.#admin.database);
    const result = await this.#query(admin, 'listing issued roles', () =>
      admin.query<{ rolname: string; comment: string | null }>(
        `SELECT r.rolname, shobj_description(r.oid, 'pg_authid') AS comment
           FROM pg_roles r
          WHERE ${managedRole('$1')}
          ORDER BY r.rolname`,
        [this.#settings.marker_role],
      ),
    );
    return result.rows.map((r) => {
      const grantId = r.comment?.startsWith(COMMENT_PREFIX) ? r.comment.slice(COMMENT_PREFIX.length) : undefined;
      return grantId ? { providerRef: r.rolname, grantId } : { providerRef: r.rolname };
    });
  }

  // ---- steps ---------------------------------------------------------------

  #clientHost(): string {
    return this.#settings.host ?? this.#admin.host;
  }

  #clientPort(): number {
    return this.#settings.port ?? this.#admin.port;
  }

  #pool(database: string): pg.Pool {
    let pool = this.#pools.get(database);
    if (!pool) {
      const url = new URL(this.#adminUrl.reveal());
      url.pathname = `/${encodeURIComponent(database)}`;
      pool = new pg.Pool({
        connectionString: url.toString(),
        max: POOL_SIZE,
        connectionTimeoutMillis: 5000,
        idleTimeoutMillis: 30_000,
        application_name: 'latchkey',
      });
      // An idle connection the server closes must not crash the broker.
      pool.on('error', () => {});
      this.#pools.set(database, pool);
    }
    return pool;
  }

  /** Server version, and the marker role made if missing; memoized, retried after a failure. */
  #serverFacts(): Promise<ServerFacts> {
    this.#facts ??= this.#setUp().catch((err: unknown) => {
      this.#facts = undefined;
      throw err;
    });
    return this.#facts;
  }

  async #setUp(): Promise<ServerFacts> {
    const admin = this.#pool(this.#admin.database);
    const doing = 'connecting with the admin URL';
    const marker = this.#settings.marker_role;
    const facts = await this.#query(admin, doing, () =>
      admin.query<{ version: number; superuser: boolean; exists: boolean }>(
        `SELECT current_setting('server_version_num')::int AS version,
                (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
                EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS exists`,
        [marker],
      ),
    );
    const row = facts.rows[0]!;
    if (row.version < 150000) {
      this.#logger.warn(
        { target: this.name, version: row.version },
        'PostgreSQL before 15 lets PUBLIC create objects in schema public; run REVOKE CREATE ON SCHEMA public FROM PUBLIC in each database this target serves',
      );
    }
    if (!row.exists) {
      try {
        await admin.query(
          `CREATE ROLE ${escapeIdentifier(marker)} NOLOGIN NOINHERIT; ` +
            `COMMENT ON ROLE ${escapeIdentifier(marker)} IS ${escapeLiteral('latchkey: every member is a login the broker made and will drop; grant this role nothing')}`,
        );
      } catch (err) {
        // Another replica made it first.
        if (sqlState(err) !== '42710' && sqlState(err) !== '23505') throw toProviderError(err, this.name, `creating marker role ${marker}`, this.#secrets);
      }
    }
    return { version: row.version, superuser: row.superuser };
  }

  /** Runs one idempotent statement, again when another session changed the same catalog row at the same moment. */
  async #query<T>(pool: pg.Pool, doing: string, run: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await run();
      } catch (err) {
        if (attempt < MAX_TRANSACTION_ATTEMPTS && RETRYABLE_SQLSTATES.has(sqlState(err) ?? '')) {
          await sleep(5 + Math.random() * 20);
          continue;
        }
        throw toProviderError(err, this.name, doing, this.#secrets);
      }
    }
  }

  /**
   * Runs the statements as one transaction in one round trip (a simple-query
   * batch) on `database`, again when PostgreSQL reports a concurrent catalog
   * update. Any failure rolls everything back. Resolves to the statements'
   * results, in order.
   */
  async #transaction(database: string, doing: string, statements: readonly string[]): Promise<pg.QueryResult[]> {
    const batch = ['BEGIN', ...statements, 'COMMIT'].join(';\n');
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await this.#pool(database).connect();
      } catch (err) {
        throw toProviderError(err, this.name, doing, this.#secrets);
      }
      let failure: unknown;
      let results: pg.QueryResult[] = [];
      try {
        // A multi-statement simple query answers one result per statement: drop BEGIN's and COMMIT's.
        results = ([] as pg.QueryResult[]).concat(await client.query(batch)).slice(1, -1);
      } catch (err) {
        failure = err ?? new Error('query failed');
      }
      let broken = false;
      // A failed statement leaves the transaction aborted; end it before the connection goes back.
      if (failure !== undefined) await client.query('ROLLBACK').catch(() => (broken = true));
      client.release(broken);
      if (failure === undefined) return results;
      if (attempt < MAX_TRANSACTION_ATTEMPTS && RETRYABLE_SQLSTATES.has(sqlState(failure) ?? '')) {
        await sleep(5 + Math.random() * 20);
        continue;
      }
      throw toProviderError(failure, this.name, doing, this.#secrets);
    }
  }

  /** Sequences owned by columns of the scope's tables (serial and identity columns). */
  async #ownedSequences(scope: ResolvedScope): Promise<{ schema: string; name: string }[]> {
    const pool = this.#pool(scope.database);
    const result = await this.#query(pool, 'looking up the tables\' sequences', () =>
      pool.query<{ schema: string; name: string }>(
        `SELECT DISTINCT sn.nspname AS schema, s.relname AS name
           FROM unnest($1::text[], $2::text[]) AS t(schema, name)
           JOIN pg_namespace n ON n.nspname = t.schema
           JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.name
           JOIN pg_depend d ON d.refobjid = c.oid AND d.refclassid = 'pg_class'::regclass AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
           JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
           JOIN pg_namespace sn ON sn.oid = s.relnamespace`,
        [scope.tables.map((t) => t.name.schema), scope.tables.map((t) => t.name.name)],
      ),
    );
    return result.rows;
  }

  /** Throws InvalidScope naming the first table, schema or column of the scope missing from the catalog. */
  async #checkCatalog(scope: ResolvedScope): Promise<void> {
    const pool = this.#pool(scope.database);
    const result = await this.#query(pool, 'checking the catalog', () =>
      pool.query<{ found: boolean; columns: string[] }>(
        `SELECT c.oid IS NOT NULL AS found,
                COALESCE(ARRAY(SELECT a.attname::text FROM pg_attribute a
                                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '{}') AS columns
           FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(schema, name, i)
           LEFT JOIN pg_namespace n ON n.nspname = t.schema
           LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.name
          ORDER BY t.i`,
        [scope.tables.map((t) => t.name.schema), scope.tables.map((t) => t.name.name)],
      ),
    );
    scope.tables.forEach((table: ResolvedTable, i) => {
      const row = result.rows[i]!;
      if (!row.found) {
        throw new InvalidScope(`table ${table.display} does not exist in database ${scope.database}`, { table: table.display, database: scope.database });
      }
      const missing = table.columns?.find((c) => !row.columns.includes(c));
      if (missing !== undefined) {
        throw new InvalidScope(`column ${displayIdentifier(missing)} does not exist in table ${table.display}`, { table: table.display, column: missing });
      }
    });
  }

  /**
   * Creates the login in one transaction, one round trip, with no ACL
   * written: the login joins the scope's group, which holds the privileges.
   * The first statement checks that the group holds every privilege of the
   * scope (and fails the whole transaction, naming what is missing, when a
   * table or column does not exist, or with 42704 when the group does not).
   * Resolves to that check's answer. Every name is quoted by pg, every value a
   * pg literal.
   */
  async #createLogin(role: string, verifier: string, group: string, scope: ResolvedScope, input: IssueInput<PostgresAllowance, PostgresScope>, facts: ServerFacts): Promise<boolean> {
    const r = escapeIdentifier(role);
    const g = escapeIdentifier(group);
    const marker = escapeIdentifier(this.#settings.marker_role);
    const v16 = facts.version >= 160000;
    // Up to 15, INHERIT is a property of the role, not of each membership: the login inherits
    // the group's privileges, and the marker's, which hold nothing ("grant this role nothing").
    const attributes = `LOGIN ${v16 ? 'NOINHERIT' : 'INHERIT'} PASSWORD ${escapeLiteral(verifier)} VALID UNTIL ${escapeLiteral(input.expiresAt.toISOString())} CONNECTION LIMIT ${this.#settings.connection_limit}`;
    const statements = [
      `SELECT ${scopePrivilegesHeld(group, scope)} AS held, pg_advisory_xact_lock_shared(${SCOPE_GROUP_LOCK})`,
      // A non-superuser admin needs the login's privileges to terminate it and DROP OWNED it later.
      ...(!facts.superuser && v16 ? [`SET LOCAL createrole_self_grant = 'inherit'`] : []),
      // Losing this commit in a server crash only loses a login nobody could use yet (revoke copes with a missing role).
      `SET LOCAL synchronous_commit = off`,
      ...(v16
        ? [
            `CREATE ROLE ${r} ${attributes}`,
            // From 16 on: membership in the marker only labels the login; the group's privileges are inherited; neither may be SET.
            `GRANT ${marker} TO ${r} WITH INHERIT FALSE, SET FALSE`,
            `GRANT ${g} TO ${r} WITH INHERIT TRUE, SET FALSE`,
          ]
        : [`CREATE ROLE ${r} ${attributes} IN ROLE ${marker}, ${g}`]),
      ...(!facts.superuser && !v16 ? [`GRANT ${r} TO CURRENT_USER`] : []),
      `COMMENT ON ROLE ${r} IS ${escapeLiteral(COMMENT_PREFIX + input.grantId)}`,
    ];
    const settings: Record<string, string | undefined> = { ...this.#settings.role_settings };
    if (scope.privileges.every((p) => p === 'SELECT')) settings['default_transaction_read_only'] = 'on';
    for (const [name, value] of Object.entries(settings)) {
      if (value === undefined) continue;
      statements.push(`ALTER ROLE ${r} SET ${escapeIdentifier(name)} = ${escapeLiteral(value)}`);
    }
    const results = await this.#transaction(scope.database, 'issuing a login', statements);
    return results[0]?.rows[0]?.['held'] === true;
  }

  /**
   * Makes the scope's group if it is missing and grants it exactly the
   * scope: CONNECT on the database, USAGE on the schemas, the privileges on
   * the tables (or columns), and USAGE on the tables' own sequences for
   * INSERT. This is the only place that writes ACLs while issuing, once per
   * scope, not once per login: with a role per grant, each login's own ACL
   * entries would make every GRANT on a table slower as logins accumulate
   * (the ACL array is rewritten whole) and would make grants queue on the
   * table's catalog row. Idempotent, and safe with several replicas.
   */
  #grantScopeGroup(group: string, scope: ResolvedScope, facts: ServerFacts): Promise<void> {
    // Logins of a new scope arriving together wait for one preparation instead of each queueing for the lock.
    let pending = this.#preparingGroups.get(group);
    if (!pending) {
      pending = this.#prepareScopeGroup(group, scope, facts).finally(() => this.#preparingGroups.delete(group));
      this.#preparingGroups.set(group, pending);
    }
    return pending;
  }

  async #prepareScopeGroup(group: string, scope: ResolvedScope, facts: ServerFacts): Promise<void> {
    const g = escapeIdentifier(group);
    const pool = this.#pool(scope.database);
    const doing = `preparing scope group ${group}`;
    for (let attempt = 1; ; attempt++) {
      const exists = (await this.#query(pool, doing, () => pool.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [group]))).rowCount === 1;
      const statements = [
        `SELECT pg_advisory_xact_lock(${ACL_LOCK})`,
        ...(exists
          ? []
          : [
              // A non-superuser admin needs the group's privileges to DROP OWNED it when it is pruned.
              ...(!facts.superuser && facts.version >= 160000 ? [`SET LOCAL createrole_self_grant = 'inherit'`] : []),
              `CREATE ROLE ${g} NOLOGIN NOINHERIT`,
              ...(!facts.superuser && facts.version < 160000 ? [`GRANT ${g} TO CURRENT_USER`] : []),
              `COMMENT ON ROLE ${g} IS ${escapeLiteral(scopeGroupComment(this.#settings.marker_role, scope))}`,
            ]),
        `GRANT CONNECT ON DATABASE ${escapeIdentifier(scope.database)} TO ${g}`,
        ...[...new Set(scope.tables.map((t) => t.name.schema))].map((schema) => `GRANT USAGE ON SCHEMA ${escapeIdentifier(schema)} TO ${g}`),
        ...scope.tables.map((table) => {
          const columns = table.columns ? ` (${table.columns.map((c) => escapeIdentifier(c)).join(', ')})` : '';
          // DELETE removes whole rows; PostgreSQL has no column-level DELETE (checkScope refuses it on column-limited tables).
          const privileges = scope.privileges.map((p) => (p === 'DELETE' ? p : `${p}${columns}`)).join(', ');
          return `GRANT ${privileges} ON TABLE ${quoteQualifiedName(table.name)} TO ${g}`;
        }),
      ];
      // Rows inserted through a serial/identity column draw from its sequence: INSERT needs USAGE on it.
      if (scope.privileges.includes('INSERT')) {
        for (const sequence of await this.#ownedSequences(scope)) {
          statements.push(`GRANT USAGE ON SEQUENCE ${quoteQualifiedName(sequence)} TO ${g}`);
        }
      }
      try {
        await this.#transaction(scope.database, doing, statements);
        return;
      } catch (err) {
        // Another replica made the group between our look and our CREATE: grant on the one it made.
        if (!exists && attempt === 1 && (sqlState(err) === '42710' || sqlState(err) === '23505')) continue;
        throw err;
      }
    }
  }

  /**
   * Drops this target's scope groups that no login belongs to any more (after
   * a policy change, say), with their privileges. Run by reconciliation.
   * Returns the names dropped.
   */
  async pruneUnused(): Promise<string[]> {
    await this.#serverFacts();
    const admin = this.#pool(this.#admin.database);
    const unused = await this.#query(admin, 'listing unused scope groups', () =>
      admin.query<{ rolname: string; oid: string }>(
        `SELECT r.rolname, r.oid::text AS oid FROM pg_roles r
          WHERE r.rolname LIKE 'latchkey\\_scope\\_%' AND NOT r.rolcanlogin
            AND shobj_description(r.oid, 'pg_authid') LIKE $1
            AND NOT ${otherMember('r.oid')}`,
        [`${SCOPE_GROUP_COMMENT_PREFIX}${this.#settings.marker_role.replace(/[\\%_]/g, '\\$&')}:%`],
      ),
    );
    const dropped: string[] = [];
    for (const { rolname, oid } of unused.rows) {
      if (await this.#dropUnusedGroup(rolname, oid)) dropped.push(rolname);
    }
    return dropped;
  }

  /**
   * Drops one scope group if it still has no member once logins of its
   * database are held off (SCOPE_GROUP_LOCK); false when one joined meanwhile.
   */
  async #dropUnusedGroup(group: string, oid: string): Promise<boolean> {
    const quoted = escapeIdentifier(group);
    const doing = `dropping scope group ${group}`;
    const [home = this.#admin.database, ...others] = await this.#databasesHolding(oid);
    for (const database of others) await this.#dropOwnedIn(database, quoted, `${doing} in ${database}`);
    let client: pg.PoolClient;
    try {
      client = await this.#pool(home).connect();
    } catch (err) {
      throw toProviderError(err, this.name, doing, this.#secrets);
    }
    let broken = false;
    try {
      await client.query('BEGIN');
      await client.query(`SELECT pg_advisory_xact_lock(${SCOPE_GROUP_LOCK}), pg_advisory_xact_lock(${ACL_LOCK})`);
      const used = await client.query<{ used: boolean }>(`SELECT ${otherMember('$1::oid')} AS used`, [oid]);
      if (used.rows[0]?.used) {
        await client.query('ROLLBACK');
        return false;
      }
      await client.query(`DROP OWNED BY ${quoted}`);
      await client.query(`DROP ROLE ${quoted}`);
      await client.query('COMMIT');
      return true;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => (broken = true));
      // Dropped by another replica's reconciliation meanwhile.
      if (sqlState(err) === '42704') return false;
      throw toProviderError(err, this.name, doing, this.#secrets);
    } finally {
      client.release(broken);
    }
  }

  /** Removes what a role holds in one database (what it owns and its privileges) under the ACL lock. */
  async #dropOwnedIn(database: string, quotedRole: string, doing: string): Promise<void> {
    await this.#transaction(database, doing, [
      `SELECT pg_advisory_xact_lock(${ACL_LOCK})`,
      `DROP OWNED BY ${quotedRole}`,
    ]).catch((err: unknown) => {
      // The database was dropped meanwhile, or another replica dropped the role: nothing left to clean there.
      const state = sqlState(err);
      if (state !== '3D000' && state !== '42704') throw err;
    });
  }

  /** Terminates every backend of the role, on every database, and waits until they are gone. */
  async #terminateSessions(oid: string, role: string): Promise<void> {
    const admin = this.#pool(this.#admin.database);
    const doing = `terminating sessions of ${role}`;
    const { version } = await this.#serverFacts();
    // From 14 on, pg_terminate_backend can wait for the backend to exit.
    const terminate = version >= 140000 ? 'pg_terminate_backend(pid, 1000)' : 'pg_terminate_backend(pid)';
    for (let round = 0; round < TERMINATION_ROUNDS; round++) {
      const result = await this.#query(admin, doing, () =>
        admin.query(`SELECT ${terminate} FROM pg_stat_activity WHERE usesysid = $1::oid AND pid <> pg_backend_pid()`, [oid]),
      );
      if (result.rowCount === 0) return;
      await sleep(50);
    }
    throw new ProviderUnavailable(`postgres target ${this.name}: sessions of ${role} survive termination; will retry`, { role });
  }

  /** Databases where the role owns something or holds a privilege (pg_shdepend), including shared objects. */
  async #databasesHolding(oid: string): Promise<string[]> {
    const admin = this.#pool(this.#admin.database);
    const result = await this.#query(admin, 'finding what a role holds', () =>
      admin.query<{ datname: string }>(
        `SELECT DISTINCT d.datname
           FROM pg_shdepend s
           JOIN pg_database d ON d.oid = CASE
                  WHEN s.dbid <> 0 THEN s.dbid
                  WHEN s.classid = 'pg_database'::regclass THEN s.objid
                  ELSE (SELECT oid FROM pg_database WHERE datname = current_database())
                END
          WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = $1::oid AND s.deptype <> 'p' AND d.datallowconn
          ORDER BY 1`,
        [oid],
      ),
    );
    return result.rows.map((r) => r.datname);
  }
}

function ignoreMissingRole(err: unknown): void {
  // Dropped by someone else since we looked: the rest of revoke copes.
  if (sqlState(err) !== '42704') throw err;
}

const SCOPE_GROUP_COMMENT_PREFIX = 'latchkey scope group of ';

/**
 * The group role that holds one scope's privileges, shared by every login of
 * that scope: the same name on every replica, from the marker (so two brokers
 * with different markers never share) and the scope in a canonical order.
 */
export function scopeGroupName(marker: string, scope: ResolvedScope): string {
  const canonical = JSON.stringify([
    marker,
    scope.database,
    scope.tables.map((t) => [t.name.schema, t.name.name, t.columns ? [...t.columns].sort() : null]).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1)),
    [...scope.privileges].sort(),
  ]);
  return `latchkey_scope_${createHash('sha256').update(canonical).digest('hex').slice(0, 24)}`;
}

function scopeGroupComment(marker: string, scope: ResolvedScope): string {
  const tables = scope.tables.map((t) => (t.columns ? `${t.display}(${t.columns.map(displayIdentifier).join(', ')})` : t.display)).join(', ');
  return `${SCOPE_GROUP_COMMENT_PREFIX}${marker}: ${scope.privileges.join(', ')} on ${tables} in database ${scope.database}; its members are latchkey logins`;
}

/**
 * An SQL expression, true when `group` holds every privilege of the scope.
 * It fails (42704) when the group does not exist, and when a table, schema or
 * column does not (42P01, 3F000, 42703). Values are pg literals.
 */
function scopePrivilegesHeld(group: string, scope: ResolvedScope): string {
  const g = escapeLiteral(group);
  const checks = [`has_database_privilege(${g}, ${escapeLiteral(scope.database)}, 'CONNECT')`];
  for (const schema of new Set(scope.tables.map((t) => t.name.schema))) checks.push(`has_schema_privilege(${g}, ${escapeLiteral(schema)}, 'USAGE')`);
  for (const table of scope.tables) {
    const name = escapeLiteral(quoteQualifiedName(table.name));
    for (const privilege of scope.privileges) {
      if (!table.columns || privilege === 'DELETE') checks.push(`has_table_privilege(${g}, ${name}, '${privilege}')`);
      else for (const column of table.columns) checks.push(`has_column_privilege(${g}, ${name}, ${escapeLiteral(column)}, '${privilege}')`);
    }
  }
  return checks.join(' AND ');
}
