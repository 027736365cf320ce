import type { Secret } from '../../secret.js';

/** What a caller receives for a PostgreSQL grant (the 201 body's `credential`). */
export interface PostgresCredential {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
  readonly sslmode: string;
  /** libpq URI with user, password and database percent-encoded. */
  readonly uri: string;
  /** ISO 8601; the login stops working then. */
  readonly expiresAt: string;
}

/** Host as it goes into a URI: IPv6 literals in brackets. */
function uriHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** Puts the pieces of a login together; the only place the password leaves its `Secret`. */
export function buildPostgresCredential(parts: {
  host: string;
  port: number;
  database: string;
  user: string;
  password: Secret<string>;
  sslmode: string;
  expiresAt: Date;
}): PostgresCredential {
  const password = parts.password.reveal();
  const uri =
    `postgresql://${encodeURIComponent(parts.user)}:${encodeURIComponent(password)}@${uriHost(parts.host)}:${parts.port}` +
    `/${encodeURIComponent(parts.database)}?sslmode=${encodeURIComponent(parts.sslmode)}`;
  return {
    host: parts.host,
    port: parts.port,
    database: parts.database,
    user: parts.user,
    password,
    sslmode: parts.sslmode,
    uri,
    expiresAt: parts.expiresAt.toISOString(),
  };
}
