import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { SubjectRateLimiter } from '../../src/grants/rate-limit.js';

describe('the per-caller grant rate limit', () => {
  it('allows a burst, then one request per refill interval, and says when to retry', () => {
    const clock = new ManualClock();
    const limiter = new SubjectRateLimiter({ perMinute: 60, burst: 3 }, clock);
    for (let i = 0; i < 3; i++) limiter.take('gh', 'repo:a/b');
    expect(() => limiter.take('gh', 'repo:a/b')).toThrow(expect.objectContaining({ code: 'rate_limited', status: 429, detail: { retryAfterSeconds: 1 } }));
    clock.advance(1000);
    expect(() => limiter.take('gh', 'repo:a/b')).not.toThrow();
    expect(() => limiter.take('gh', 'repo:a/b')).toThrow(/at most 60 a minute/);
  });

  it('keeps callers apart: one busy subject does not slow another, nor the same subject of another issuer', () => {
    const limiter = new SubjectRateLimiter({ perMinute: 1, burst: 1 }, new ManualClock());
    limiter.take('gh', 'repo:a/b');
    expect(() => limiter.take('gh', 'repo:a/b')).toThrow();
    expect(() => limiter.take('gh', 'repo:c/d')).not.toThrow();
    expect(() => limiter.take('sso', 'repo:a/b')).not.toThrow();
  });
});
