import { z } from 'zod';
import {
  MAX_IDENTIFIER_BYTES,
  displayQualifiedName,
  parseIdentifier,
  parseQualifiedName,
  parseSchemaPattern,
  parseTablePattern,
} from './sql-identifiers.js';

/**
 * The three schemas of the `postgres` kind: a target (what the broker may
 * ever hand out on one server), a rule's allowance (a subset of it), and a
 * request's scope (what one caller asks for). Names are checked here, at the
 * boundary, so a malformed table name is a 400 that names it; whether a
 * well-formed name is *allowed* is `checkScope`'s business (a policy denial).
 */

export const PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const;
export type Privilege = (typeof PRIVILEGES)[number];

/**
 * Role settings an operator may pin on every login: each is a plain session
 * setting (a user could `SET` it too), none needs superuser, none widens what
 * the role can reach. They are guard rails (timeouts, read-only default), not
 * the security boundary; the grants are.
 */
export const SAFE_ROLE_SETTINGS = [
  'statement_timeout',
  'lock_timeout',
  'idle_in_transaction_session_timeout',
  'idle_session_timeout',
  'default_transaction_read_only',
  'default_transaction_isolation',
  'work_mem',
  'search_path',
  'timezone',
  'datestyle',
  'intervalstyle',
  'application_name',
  'row_security',
] as const;

const privilege = z.preprocess(
  (value) => (typeof value === 'string' ? value.toUpperCase() : value),
  z.enum(PRIVILEGES, { message: `expected one of ${PRIVILEGES.join(', ')}` }),
);

/** Database names are used verbatim (connection strings do not fold case). */
const databaseName = z
  .string()
  .min(1)
  .refine((s) => Buffer.byteLength(s, 'utf8') <= MAX_IDENTIFIER_BYTES, `expected at most ${MAX_IDENTIFIER_BYTES} bytes`)
  .refine((s) => /^[\x21-\x7e]+$/.test(s), 'expected a database name of printable ASCII without spaces');

const tablePattern = z.string().superRefine((text, ctx) => {
  const parsed = parseTablePattern(text);
  if (!parsed.ok) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(text)} is not a table glob: ${parsed.reason}` });
});

const schemaPattern = z.string().superRefine((text, ctx) => {
  const parsed = parseSchemaPattern(text);
  if (!parsed.ok) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(text)} is not a schema glob: ${parsed.reason}` });
});

const settingValue = z
  .union([z.string(), z.number(), z.boolean()])
  .transform((v) => (typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v)))
  .refine((v) => v.length <= 256 && /^[\x20-\x7e]*$/.test(v), 'expected a value of at most 256 printable ASCII characters');

/** `targets.<name>` of kind `postgres`. */
export const postgresTargetSchema = z
  .strictObject({
    /** Env var holding the admin connection URL (its password never sits in the YAML). */
    admin_url_env: z.string().min(1).optional(),
    /** File holding the admin connection URL (a Kubernetes Secret mount). */
    admin_url_file: z.string().min(1).optional(),
    /** Host and port as clients should see them; default: those of the admin URL. */
    host: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    /** `sslmode` put in the credential's URI and environment. */
    sslmode: z.enum(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']).default('prefer'),
    /** Databases this target may ever hand out. */
    databases: z.array(databaseName).min(1),
    /** Schema globs this target may ever hand out; default: any schema the table globs allow. */
    schemas: z.array(schemaPattern).min(1).optional(),
    /** Table globs this target may ever hand out, e.g. `demo.*`. */
    tables: z.array(tablePattern).min(1),
    /** Privileges any rule may grant here. */
    privileges: z.array(privilege).min(1).default(['SELECT']),
    /**
     * PBKDF2 iterations of the SCRAM verifier. Iterations slow down guessing a
     * human password from a leaked verifier; the broker's passwords are 256
     * random bits and live 15 minutes, beyond guessing at any count. The work is
     * paid three times per grant (the broker computes the verifier, the server
     * re-checks it against the empty password at CREATE ROLE, the client at
     * login), so PostgreSQL's 4096 would cap the grant rate for nothing: 256.
     */
    scram_iterations: z.number().int().min(1).max(1_000_000).default(256),
    /** `CONNECTION LIMIT` of every login. */
    connection_limit: z.number().int().min(1).max(1000).default(5),
    /** `ALTER ROLE ... SET` applied to every login. */
    role_settings: z
      .record(z.string(), settingValue)
      .superRefine((settings, ctx) => {
        for (const name of Object.keys(settings)) {
          if (!(SAFE_ROLE_SETTINGS as readonly string[]).includes(name)) {
            ctx.addIssue({ code: 'custom', path: [name], message: `${JSON.stringify(name)} is not a setting latchkey applies to logins; expected one of ${SAFE_ROLE_SETTINGS.join(', ')}` });
          }
        }
      })
      .default({}),
    /** Start of every role name this target creates. */
    role_prefix: z
      .string()
      .regex(/^[a-z][a-z0-9_]{0,19}$/, 'expected 1-20 characters of a-z, 0-9 and _, starting with a letter')
      .refine((s) => !s.startsWith('pg_'), 'role names may not start with pg_ (reserved by PostgreSQL)')
      .default('lk_'),
    /** NOLOGIN group role every login is a member of, so the broker can find what it made. */
    marker_role: z
      .string()
      .regex(/^[a-z][a-z0-9_]{0,62}$/, 'expected at most 63 characters of a-z, 0-9 and _, starting with a letter')
      .refine((s) => !s.startsWith('pg_'), 'role names may not start with pg_ (reserved by PostgreSQL)')
      .default('latchkey_managed'),
  })
  .superRefine((value, ctx) => {
    if (!value.admin_url_env === !value.admin_url_file) {
      ctx.addIssue({ code: 'custom', path: ['admin_url_env'], message: 'expected exactly one of admin_url_env or admin_url_file' });
    }
  });
export type PostgresTargetSettings = z.infer<typeof postgresTargetSchema>;

/** A rule's `allow[]` entry of kind `postgres`. */
export const postgresAllowSchema = z
  .strictObject({
    /** Table names or globs (`demo.orders`, `demo.*`). */
    tables: z.array(tablePattern).min(1),
    /** Column lists per table (exact names): a request for that table gets at most these columns. */
    columns: z.record(z.string(), z.array(z.string()).min(1)).optional(),
    privileges: z.array(privilege).min(1).default(['SELECT']),
    /** Databases this rule allows; default: every database of the target. */
    databases: z.array(databaseName).min(1).optional(),
  })
  .superRefine((value, ctx) => {
    for (const [table, columns] of Object.entries(value.columns ?? {})) {
      const parsed = parseQualifiedName(table);
      if (!parsed.ok) {
        ctx.addIssue({ code: 'custom', path: ['columns'], message: `${JSON.stringify(table)} is not a table name: ${parsed.reason}` });
      }
      columns.forEach((column) => {
        const col = parseIdentifier(column);
        if (!col.ok) {
          ctx.addIssue({ code: 'custom', path: ['columns'], message: `${JSON.stringify(column)} (a column of ${JSON.stringify(table)}) is not a column name: ${col.reason}` });
        }
      });
    }
  });
export type PostgresAllowance = z.infer<typeof postgresAllowSchema>;

/** A request's `scope` for kind `postgres`. Every name must parse; a bad one is a 400 naming it. */
export const postgresScopeSchema = z
  .strictObject({
    database: databaseName,
    tables: z.array(z.string()).min(1).max(100),
    /** Column lists per table; the key must be one of `tables`. */
    columns: z.record(z.string(), z.array(z.string()).min(1).max(1600)).optional(),
    privileges: z.array(privilege).min(1).default(['SELECT']),
  })
  .superRefine((value, ctx) => {
    const requested = new Set<string>();
    value.tables.forEach((table, i) => {
      const parsed = parseQualifiedName(table);
      if (!parsed.ok) {
        ctx.addIssue({ code: 'custom', path: ['tables', i], message: `${JSON.stringify(table)} is not a table name: ${parsed.reason}` });
      } else {
        requested.add(displayQualifiedName(parsed.value));
      }
    });
    for (const [table, columns] of Object.entries(value.columns ?? {})) {
      const parsed = parseQualifiedName(table);
      if (!parsed.ok) {
        ctx.addIssue({ code: 'custom', path: ['columns'], message: `${JSON.stringify(table)} is not a table name: ${parsed.reason}` });
      } else if (!requested.has(displayQualifiedName(parsed.value))) {
        ctx.addIssue({ code: 'custom', path: ['columns'], message: `columns are given for ${JSON.stringify(table)}, which is not in tables` });
      }
      columns.forEach((column) => {
        const col = parseIdentifier(column);
        if (!col.ok) {
          ctx.addIssue({ code: 'custom', path: ['columns'], message: `${JSON.stringify(column)} (a column of ${JSON.stringify(table)}) is not a column name: ${col.reason}` });
        }
      });
    }
  });
export type PostgresScope = z.infer<typeof postgresScopeSchema>;
