import type { Clock } from '../clock.js';
import type { Queryable } from '../store/database.js';
import type { ReplayStore } from './types.js';

export interface PostgresReplayStoreOptions {
  /** Delete expired rows at most this often, piggy-backed on `claim` (default 10 min). */
  readonly purgeIntervalMs?: number;
}

/**
 * Single-use `jti`s in PostgreSQL (`used_token_ids`), so the rule holds across
 * every broker replica sharing the database: the primary key decides, not a
 * process's memory. A row lives until its token can no longer be accepted.
 */
export class PostgresReplayStore implements ReplayStore {
  readonly #db: Queryable;
  readonly #clock: Clock;
  readonly #purgeIntervalMs: number;
  #lastPurgeAt: number | undefined;

  constructor(db: Queryable, clock: Clock, options: PostgresReplayStoreOptions = {}) {
    this.#db = db;
    this.#clock = clock;
    this.#purgeIntervalMs = options.purgeIntervalMs ?? 10 * 60_000;
  }

  /**
   * Records `jti` for `issuer` until `expiresAt`; resolves false when it is
   * already recorded and still live. A row whose time has passed (not yet
   * purged) is taken over, since its token is no longer acceptable anyway.
   */
  async claim(issuer: string, jti: string, expiresAt: Date): Promise<boolean> {
    const now = this.#clock.now();
    await this.#purgeNowAndThen(now);
    const result = await this.#db.query(
      `INSERT INTO used_token_ids (issuer, jti, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (issuer, jti) DO UPDATE SET expires_at = EXCLUDED.expires_at
         WHERE used_token_ids.expires_at <= $4
       RETURNING 1`,
      [issuer, jti, expiresAt, now],
    );
    return result.rowCount === 1;
  }

  /** Deletes rows whose tokens have expired; returns how many. The sweeper may call it too. */
  async purgeExpired(): Promise<number> {
    const now = this.#clock.now();
    this.#lastPurgeAt = now.getTime();
    const result = await this.#db.query('DELETE FROM used_token_ids WHERE expires_at <= $1', [now]);
    return result.rowCount ?? 0;
  }

  async #purgeNowAndThen(now: Date): Promise<void> {
    const last = this.#lastPurgeAt;
    if (last !== undefined && now.getTime() - last < this.#purgeIntervalMs) return;
    this.#lastPurgeAt = now.getTime();
    await this.#db.query('DELETE FROM used_token_ids WHERE expires_at <= $1', [now]);
  }
}
