import { describe, expect, it } from 'vitest';
import { InvalidScope } from '../../../src/errors.js';
import { postgresKind, type PostgresScope } from '../../../src/providers/postgres/index.js';
import { resolveScope } from '../../../src/providers/postgres/scope.js';

const target = postgresKind.targetSchema.parse({
  admin_url_env: 'UNUSED',
  databases: ['app', 'analytics'],
  schemas: ['demo', 'sales'],
  tables: ['demo.*', 'sales.orders', 'pg_catalog.*', 'secret.*'],
  privileges: ['SELECT', 'INSERT', 'DELETE'],
});
const allow = postgresKind.allowSchema.parse({
  tables: ['demo.orders', 'demo.customers', 'sales.*', 'pg_catalog.*', 'secret.*'],
  columns: { 'demo.customers': ['id', 'name'] },
  privileges: ['SELECT', 'DELETE', 'UPDATE'],
  databases: ['app'],
});
const scope = (input: Record<string, unknown>) => postgresKind.scopeSchema.parse(input);
const check = (input: Record<string, unknown>) => postgresKind.checkScope({ target, allow, scope: scope(input), claims: {} });

describe('checking a postgres scope against the rule and the target', () => {
  it('allows tables, columns and privileges inside both', () => {
    expect(check({ database: 'app', tables: ['demo.orders'] })).toBeNull();
    expect(check({ database: 'app', tables: ['"demo"."orders"', 'DEMO.CUSTOMERS'], columns: { 'demo.customers': ['name'] } })).toBeNull();
  });

  it.each([
    [{ database: 'other', tables: ['demo.orders'] }, 'target.databases', 'other', 'database "other" is not offered by this target'],
    [{ database: 'analytics', tables: ['demo.orders'] }, 'allow.databases', 'analytics', 'database "analytics" is not allowed by this rule'],
    [{ database: 'app', tables: ['demo.orders'], privileges: ['UPDATE'] }, 'target.privileges', 'UPDATE', 'privilege UPDATE is not offered by this target'],
    [{ database: 'app', tables: ['demo.orders'], privileges: ['select', 'insert'] }, 'allow.privileges', 'INSERT', 'privilege INSERT is not allowed by this rule'],
    [{ database: 'app', tables: ['demo.orders', 'demo.payments'] }, 'allow.tables', 'demo.payments', 'table demo.payments is not allowed by this rule'],
    [{ database: 'app', tables: ['sales.refunds'] }, 'target.tables', 'sales.refunds', 'table sales.refunds is not offered by this target'],
    [{ database: 'app', tables: ['secret.keys'] }, 'target.schemas', 'secret.keys', 'schema secret (of table secret.keys) is not offered by this target'],
    [{ database: 'app', tables: ['pg_catalog.pg_authid'] }, 'target.schemas', 'pg_catalog.pg_authid', 'table pg_catalog.pg_authid is in a system schema, which is never granted'],
    [{ database: 'app', tables: ['"Demo".orders'] }, 'target.schemas', '"Demo".orders', 'schema "Demo" (of table "Demo".orders) is not offered by this target'],
    [{ database: 'app', tables: ['demo.customers'], columns: { 'demo.customers': ['name', 'email'] } }, 'allow.columns', 'email', 'column email of demo.customers is not allowed by this rule'],
    [{ database: 'app', tables: ['demo.customers'], privileges: ['DELETE'] }, 'allow.columns', 'DELETE', 'DELETE on demo.customers cannot be limited to columns, and this rule limits demo.customers to columns'],
  ])('refuses %j, naming %s', (input, condition, actual, message) => {
    expect(check(input)).toMatchObject({ condition, actual, message });
  });

  it('limits a table to the columns the rule names when the request names none', () => {
    const resolved = resolveScope(scope({ database: 'app', tables: ['demo.customers', 'demo.orders'] }), allow);
    expect(resolved.tables.map((t) => [t.display, t.columns])).toEqual([
      ['demo.customers', ['id', 'name']],
      ['demo.orders', null],
    ]);
  });

  it('treats one table named two ways as one table', () => {
    const resolved = resolveScope(scope({ database: 'app', tables: ['demo.orders', '"demo"."orders"'] }), allow);
    expect(resolved.tables).toHaveLength(1);
  });

  it('throws InvalidScope (a 400) for a name that skipped the scope schema', () => {
    const raw: PostgresScope = { database: 'app', tables: ['demo.orders; DROP TABLE x'], privileges: ['SELECT'] };
    expect(() => postgresKind.checkScope({ target, allow, scope: raw, claims: {} })).toThrow(InvalidScope);
  });
});

describe('the scope schema', () => {
  it.each([
    [{ database: 'app', tables: ['demo.orders; DROP TABLE x'] }, 'tables.0', '"demo.orders; DROP TABLE x" is not a table name'],
    [{ database: 'app', tables: ['demo.orders'], columns: { 'demo.orders': ['id; DROP TABLE x'] } }, 'columns', '"id; DROP TABLE x" (a column of "demo.orders") is not a column name'],
    [{ database: 'app', tables: ['demo.orders'], columns: { 'demo.payments': ['id'] } }, 'columns', 'columns are given for "demo.payments", which is not in tables'],
    [{ database: 'app', tables: ['demo.orders'], privileges: ['TRUNCATE'] }, 'privileges.0', 'expected one of SELECT, INSERT, UPDATE, DELETE'],
    [{ database: 'app\u0000', tables: ['demo.orders'] }, 'database', 'expected a database name of printable ASCII without spaces'],
    [{ database: 'app', tables: [] }, 'tables', ''],
    [{ database: 'app', tables: ['demo.orders'], extra: 1 }, '', ''],
  ])('refuses %j at %s', (input, path, message) => {
    const parsed = postgresKind.scopeSchema.safeParse(input);
    expect(parsed.success).toBe(false);
    const issue = parsed.error!.issues.find((i) => i.path.join('.') === path);
    expect(issue, JSON.stringify(parsed.error!.issues)).toBeDefined();
    expect(issue!.message).toContain(message);
  });

  it('upper-cases privileges and defaults to SELECT', () => {
    expect(scope({ database: 'app', tables: ['demo.orders'] }).privileges).toEqual(['SELECT']);
    expect(scope({ database: 'app', tables: ['demo.orders'], privileges: ['select'] }).privileges).toEqual(['SELECT']);
  });
});

describe('the target schema', () => {
  const base = { admin_url_env: 'PG_ADMIN_URL', databases: ['app'], tables: ['demo.*'] };
  it('fills in the defaults', () => {
    expect(postgresKind.targetSchema.parse(base)).toMatchObject({
      sslmode: 'prefer',
      privileges: ['SELECT'],
      connection_limit: 5,
      role_prefix: 'lk_',
      marker_role: 'latchkey_managed',
      role_settings: {},
    });
  });
  it.each([
    [{ ...base, admin_url_file: '/x' }, 'admin_url_env', 'exactly one of admin_url_env or admin_url_file'],
    [{ databases: ['app'], tables: ['demo.*'] }, 'admin_url_env', 'exactly one of'],
    [{ ...base, tables: ['demo.orders;'] }, 'tables.0', 'is not a table glob'],
    [{ ...base, role_settings: { log_statement: 'none' } }, 'role_settings.log_statement', 'expected one of statement_timeout'],
    [{ ...base, role_settings: { statement_timeout: "1s'; DROP" } }, '', ''],
    [{ ...base, role_prefix: 'pg_x' }, 'role_prefix', 'reserved'],
    [{ ...base, marker_role: 'Latchkey' }, 'marker_role', 'expected at most 63 characters'],
  ])('refuses %j at %s', (input, path, message) => {
    const parsed = postgresKind.targetSchema.safeParse(input);
    if (path === '') {
      // A value with a quote is fine for the schema: it becomes a pg literal, never spliced.
      expect(parsed.success).toBe(true);
      return;
    }
    expect(parsed.success).toBe(false);
    const issue = parsed.error!.issues.find((i) => i.path.join('.') === path);
    expect(issue, JSON.stringify(parsed.error!.issues)).toBeDefined();
    expect(issue!.message).toContain(message);
  });
});
