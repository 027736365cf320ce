import type { Clock } from '../clock.js';
import { namedStatement, type Queryable } from '../store/database.js';
import { MicroBatcher } from '../store/micro-batch.js';
import type { ReplayStore } from './types.js';

export interface PostgresReplayStoreOptions {
  /** Delete expired rows at most this often, piggy-backed on `claim` (default 10 min). */
  readonly purgeIntervalMs?: number;
}

const CLAIM_JTIS = namedStatement(
  'claim_jtis',
  `INSERT INTO used_token_ids (issuer, jti, expires_at)
   SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
   ON CONFLICT (issuer, jti) DO UPDATE SET expires_at = EXCLUDED.expires_at
     WHERE used_token_ids.expires_at <= $4
   RETURNING issuer, jti`,
);

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
  readonly #claims: MicroBatcher<{ issuer: string; jti: string; expiresAt: Date }, boolean>;

  constructor(db: Queryable, clock: Clock, options: PostgresReplayStoreOptions = {}) {
    this.#db = db;
    this.#clock = clock;
    this.#purgeIntervalMs = options.purgeIntervalMs ?? 10 * 60_000;
    this.#claims = new MicroBatcher((claims) => this.#claimAll(claims));
  }

  /**
   * Records `jti` for `issuer` until `expiresAt`; resolves false when it is
   * already recorded and still live. A row whose time has passed (not yet
   * purged) is taken over, since its token is no longer acceptable anyway.
   */
  async claim(issuer: string, jti: string, expiresAt: Date): Promise<boolean> {
    return this.#claims.run({ issuer, jti, expiresAt });
  }

  /** Claims of one turn in one statement; within the batch, the first claim of a jti wins. */
  async #claimAll(claims: readonly { issuer: string; jti: string; expiresAt: Date }[]): Promise<boolean[]> {
    const now = this.#clock.now();
    await this.#purgeNowAndThen(now);
    const key = (c: { issuer: string; jti: string }) => `${c.issuer}\u0000${c.jti}`;
    const first = new Map<string, number>();
    claims.forEach((c, i) => {
      if (!first.has(key(c))) first.set(key(c), i);
    });
    const unique = [...first.values()].map((i) => claims[i] as (typeof claims)[number]);
    const result = await this.#db.query<{ issuer: string; jti: string }>(CLAIM_JTIS, [
      unique.map((c) => c.issuer),
      unique.map((c) => c.jti),
      unique.map((c) => c.expiresAt),
      now,
    ]);
    const won = new Set(result.rows.map(key));
    return claims.map((c, i) => first.get(key(c)) === i && won.has(key(c)));
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
