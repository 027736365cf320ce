import type { Logger } from 'pino';
import type { AuditWriter } from '../audit/types.js';
import type { Clock } from '../clock.js';
import type { Database } from '../store/database.js';
import { toGrantRecord, type GrantRecord } from './records.js';
import type { GrantService } from './service.js';

export interface ExpirySchedulerOptions {
  readonly db: Database;
  readonly service: GrantService;
  readonly audit: AuditWriter;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Longest sleep between checks, so grants made by other replicas are seen (ms). */
  readonly maxSleepMs?: number;
  /** How long a replica holds a grant it is revoking before another may retry it (ms). */
  readonly leaseMs?: number;
  /** Called with the number of grants still waiting for a successful revocation. */
  readonly onPendingRevocations?: (count: number) => void;
}

/**
 * Ends grants at their expiry. It sleeps until the next expiry it knows of
 * (woken early when a grant is issued), so a PostgreSQL login dies within
 * moments of its `expires_at`, not at the next minute. Every replica runs one;
 * `FOR UPDATE SKIP LOCKED` and a lease make each grant handled once.
 */
export class ExpiryScheduler {
  #timer: NodeJS.Timeout | undefined;
  #nextAt = Number.POSITIVE_INFINITY;
  #running = false;
  #stopped = true;
  #rerun = false;
  readonly #maxSleepMs: number;
  readonly #leaseMs: number;

  constructor(private readonly o: ExpirySchedulerOptions) {
    this.#maxSleepMs = o.maxSleepMs ?? 5000;
    this.#leaseMs = o.leaseMs ?? 30_000;
  }

  start(): void {
    this.#stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    while (this.#running) await new Promise((r) => setTimeout(r, 20));
  }

  /** A grant now expires at `at`: wake then if that is sooner than planned. */
  wake(at: Date): void {
    if (this.#stopped) return;
    const delay = Math.max(0, at.getTime() - this.o.clock.now().getTime());
    if (Date.now() + delay < this.#nextAt) this.schedule(delay);
  }

  private schedule(delayMs: number): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    const delay = Math.min(Math.max(0, delayMs), this.#maxSleepMs);
    this.#nextAt = Date.now() + delay;
    this.#timer = setTimeout(() => void this.run(), delay);
    this.#timer.unref();
  }

  private async run(): Promise<void> {
    if (this.#running) {
      this.#rerun = true;
      return;
    }
    this.#running = true;
    let nextDelay = this.#maxSleepMs;
    try {
      await this.tick();
      nextDelay = await this.msUntilNextDue();
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'expiry check failed; retrying');
      nextDelay = 1000;
    } finally {
      this.#running = false;
    }
    if (this.#rerun) {
      this.#rerun = false;
      nextDelay = 0;
    }
    this.schedule(nextDelay);
  }

  /** Ends everything due now. Public for tests and for a final sweep. */
  async tick(): Promise<{ revoked: number; expired: number }> {
    const now = this.o.clock.now();
    let revoked = 0;
    // Credentials that must be destroyed on the backend (PostgreSQL roles), and failed revocations due a retry.
    for (;;) {
      const claimed = await this.o.db.query(
        `UPDATE grants g SET status = 'revoking', end_reason = coalesce(g.end_reason, 'expired'), next_attempt_at = $2
           WHERE g.id IN (
             SELECT id FROM grants
              WHERE (status = 'active' AND revoke_on_expiry AND expires_at <= $1)
                 OR (status = 'revoking' AND next_attempt_at <= $1)
              ORDER BY expires_at LIMIT 50 FOR UPDATE SKIP LOCKED)
         RETURNING g.*`,
        [now, new Date(now.getTime() + this.#leaseMs)],
      );
      if (claimed.rowCount === 0) break;
      const grants = claimed.rows.map((r) => toGrantRecord(r as never));
      await Promise.all(grants.map((g) => this.o.service.finishRevocation(g, g.endReason === 'revoked' ? 'revoked' : 'expired')));
      revoked += grants.length;
      if (claimed.rowCount! < 50) break;
    }
    // Credentials that simply stop working (certificates, STS sessions): record the end.
    const ended = await this.o.db.query(
      `UPDATE grants g SET status = 'expired', end_reason = 'expired', revoked_at = g.expires_at
         WHERE g.id IN (
           SELECT id FROM grants
            WHERE ((status = 'active' AND NOT revoke_on_expiry) OR status IN ('pending_approval', 'approved'))
              AND expires_at <= $1
            LIMIT 500 FOR UPDATE SKIP LOCKED)
       RETURNING g.*`,
      [now],
    );
    for (const row of ended.rows) {
      const g: GrantRecord = toGrantRecord(row as never);
      await this.o.audit
        .append({
          type: 'grant.expired', outcome: 'success', issuer: g.issuer, subject: g.subject, claims: g.claims, rule: g.rule,
          policyHash: g.policyHash, kind: g.kind, target: g.target, grantId: g.id,
          ...(g.providerRef ? { providerRef: g.providerRef } : {}),
        })
        .catch((err) => this.o.logger.error({ grantId: g.id, err: (err as Error).message }, 'expiry audit record failed'));
    }
    const pending = await this.o.db.query<{ n: string }>("SELECT count(*) AS n FROM grants WHERE status = 'revoking'");
    this.o.onPendingRevocations?.(Number(pending.rows[0]?.n ?? 0));
    return { revoked, expired: ended.rowCount ?? 0 };
  }

  private async msUntilNextDue(): Promise<number> {
    const r = await this.o.db.query<{ next: Date | null }>(
      `SELECT least(
         (SELECT min(expires_at) FROM grants WHERE status IN ('active', 'pending_approval', 'approved')),
         (SELECT min(next_attempt_at) FROM grants WHERE status = 'revoking')) AS next`,
    );
    const next = r.rows[0]?.next;
    if (!next) return this.#maxSleepMs;
    return Math.max(0, next.getTime() - this.o.clock.now().getTime());
  }
}
