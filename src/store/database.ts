import pg from 'pg';
import { StoreUnavailable } from '../errors.js';

/**
 * A statement on a hot path (every grant runs it): PostgreSQL parses and
 * plans it once per connection, then each call only binds and executes it by
 * name. Behind PgBouncer in transaction mode this needs PgBouncer 1.21+ with
 * `max_prepared_statements` set (see README).
 */
export interface NamedStatement {
  readonly name: string;
  readonly text: string;
}

/** Declares a hot statement; the name is per connection and must be unique in latchkey. */
export function namedStatement(name: string, text: string): NamedStatement {
  return { name: `latchkey_${name}`, text };
}

/** The one SQL access path for latchkey's own state. Parameters are always bound, never spliced. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | NamedStatement, values?: readonly unknown[]): Promise<pg.QueryResult<R>>;
}

export class Database implements Queryable {
  readonly pool: pg.Pool;

  /**
   * `asynchronousCommit`: commit without waiting for the WAL flush. Safe for
   * grant state because every answer the broker gives waits for a synchronous
   * audit commit first, and PostgreSQL flushes WAL in order: that flush makes
   * every earlier state change durable too (see broker.ts).
   */
  constructor(connectionString: string, poolSize = 10, options: { asynchronousCommit?: boolean } = {}) {
    this.pool = new pg.Pool({
      connectionString,
      max: poolSize,
      connectionTimeoutMillis: 5000,
      ...(options.asynchronousCommit ? { options: '-c synchronous_commit=off' } : {}),
    });
    // An idle client that dies (server restart) must not crash the broker.
    this.pool.on('error', () => {});
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | NamedStatement, values?: readonly unknown[]): Promise<pg.QueryResult<R>> {
    try {
      if (typeof text !== 'string') return await this.pool.query<R>({ name: text.name, text: text.text, values: values as unknown[] });
      return await this.pool.query<R>(text, values as unknown[]);
    } catch (err) {
      throw asStoreError(err);
    }
  }

  /** Runs `fn` in one transaction; rolls back on any error. */
  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw asStoreError(err);
    }
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async ping(): Promise<boolean> {
    try {
      await this.pool.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', '57P01', '57P03', '08000', '08003', '08006']);

/** Wrong password, no such role, no such database: the connection settings, not the server, are at fault. */
const LOGIN_CODES = new Set(['28P01', '28000', '3D000']);

/** Connection failures and refused logins become StoreUnavailable (503); SQL errors stay as they are (they are bugs). */
function asStoreError(err: unknown): unknown {
  const code = (err as { code?: string }).code;
  const message = (err as Error).message ?? '';
  if ((code && CONNECTION_CODES.has(code)) || /timeout|terminat|Connection/i.test(message)) {
    return new StoreUnavailable('the state database is unreachable', {}, { cause: err });
  }
  if (code && LOGIN_CODES.has(code)) {
    return new StoreUnavailable('the state database refused the login (user, password or database name)', {}, { cause: err });
  }
  return err;
}
