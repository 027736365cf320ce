import type { Clock } from '../clock.js';
import { RateLimited } from '../errors.js';

export interface RateLimitSettings {
  /** Sustained grant requests per minute for one caller. */
  readonly perMinute: number;
  /** Requests a caller may make at once before the rate applies. */
  readonly burst: number;
}

/**
 * A token bucket per caller (issuer + subject), in this replica's memory: a
 * CI job stuck in a retry loop, or a stolen identity, cannot turn into
 * thousands of credentials. With N replicas the effective limit is N times
 * this; the audit log still records every attempt.
 */
export class SubjectRateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly settings: RateLimitSettings,
    private readonly clock: Clock,
  ) {}

  /** Takes one request from the caller's bucket, or throws RateLimited saying when to retry. */
  take(issuer: string, subject: string): void {
    const now = this.clock.now().getTime();
    const key = `${issuer}\u0000${subject}`;
    const perMs = this.settings.perMinute / 60_000;
    const bucket = this.#buckets.get(key) ?? { tokens: this.settings.burst, at: now };
    bucket.tokens = Math.min(this.settings.burst, bucket.tokens + (now - bucket.at) * perMs);
    bucket.at = now;
    if (bucket.tokens < 1) {
      this.#buckets.set(key, bucket);
      const retryAfterSeconds = Math.max(1, Math.ceil((1 - bucket.tokens) / perMs / 1000));
      throw new RateLimited(`too many grant requests from ${subject}: at most ${this.settings.perMinute} a minute (bursts of ${this.settings.burst}); retry in ${retryAfterSeconds}s`, { retryAfterSeconds });
    }
    bucket.tokens -= 1;
    this.#buckets.set(key, bucket);
    if (this.#buckets.size > 100_000) this.#forgetFull(now);
  }

  /** Drops buckets that have refilled: they hold no information. */
  #forgetFull(now: number): void {
    const perMs = this.settings.perMinute / 60_000;
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + (now - bucket.at) * perMs >= this.settings.burst) this.#buckets.delete(key);
    }
  }
}
