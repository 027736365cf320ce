import type { PostgresCredential } from '../providers/postgres/credential.js';

export type PostgresCredentialFormat = 'uri' | 'env' | 'pgpass' | 'json';
export const POSTGRES_CREDENTIAL_FORMATS: readonly PostgresCredentialFormat[] = ['uri', 'env', 'pgpass', 'json'];

/** libpq's environment for the credential: what `--exec psql` puts in psql's environment. */
export function psqlEnvironment(cred: PostgresCredential): Record<string, string> {
  return {
    PGHOST: cred.host,
    PGPORT: String(cred.port),
    PGDATABASE: cred.database,
    PGUSER: cred.user,
    PGPASSWORD: cred.password,
    PGSSLMODE: cred.sslmode,
  };
}

/** Single-quoted for POSIX shells: safe to `eval`. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A `.pgpass` field: `:` and `\` escaped with a backslash. */
function pgpassField(value: string): string {
  return value.replace(/[\\:]/g, (c) => `\\${c}`);
}

/**
 * The credential as text for the terminal:
 * - `uri`: the libpq URI (`psql "$(latchkey grant postgres ...)"`);
 * - `env`: `export PGHOST=...` lines for `eval`;
 * - `pgpass`: one `.pgpass` line (host:port:database:user:password);
 * - `json`: the grant's id and the whole credential, expiry included.
 * Every format ends with a newline.
 */
export function formatPostgresCredential(cred: PostgresCredential, format: PostgresCredentialFormat, grantId: string): string {
  switch (format) {
    case 'uri':
      return `${cred.uri}\n`;
    case 'env':
      return Object.entries(psqlEnvironment(cred))
        .map(([name, value]) => `export ${name}=${shellQuote(value)}\n`)
        .join('');
    case 'pgpass':
      return `${[cred.host, String(cred.port), cred.database, cred.user, cred.password].map(pgpassField).join(':')}\n`;
    case 'json':
      return `${JSON.stringify({ grantId, ...cred }, null, 2)}\n`;
    default:
      throw new TypeError(`formatPostgresCredential: unknown format ${JSON.stringify(format satisfies never)}`);
  }
}

/** Reads a credential from a grant response body; a TypeError names the missing field (a broker bug). */
export function asPostgresCredential(value: unknown): PostgresCredential {
  const v = (value ?? {}) as Record<string, unknown>;
  for (const field of ['host', 'database', 'user', 'password', 'sslmode', 'uri', 'expiresAt'] as const) {
    if (typeof v[field] !== 'string') throw new TypeError(`postgres credential: expected a string ${field}`);
  }
  if (typeof v['port'] !== 'number') throw new TypeError('postgres credential: expected a number port');
  return v as unknown as PostgresCredential;
}
