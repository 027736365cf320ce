import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { LatchkeyError } from '../../src/errors.js';
import { PostgresReplayStore } from '../../src/identity/replay-store.js';
import { createIdentityVerifier } from '../../src/identity/verifier.js';
import { Database } from '../../src/store/database.js';
import { createMigratedDatabase } from '../support/database.js';
import { TestOidcIssuer } from '../support/oidc-issuer.js';

const clock = new ManualClock('2026-03-01T12:00:00Z');
let database: Awaited<ReturnType<typeof createMigratedDatabase>>;
let idp: TestOidcIssuer;

beforeAll(async () => {
  database = await createMigratedDatabase();
  idp = await TestOidcIssuer.start({ clock, algorithms: ['ES256'] });
});
afterAll(async () => {
  await idp.close();
  await database.drop();
});

const inSeconds = (seconds: number) => new Date(clock.now().getTime() + seconds * 1000);

describe('PostgresReplayStore', () => {
  it('accepts a jti once and refuses it while it lives', async () => {
    const store = new PostgresReplayStore(database.db, clock);
    expect(await store.claim('https://issuer.example', 'jti-1', inSeconds(300))).toBe(true);
    expect(await store.claim('https://issuer.example', 'jti-1', inSeconds(300))).toBe(false);
  });

  it('keeps jtis of different issuers apart', async () => {
    const store = new PostgresReplayStore(database.db, clock);
    expect(await store.claim('https://a.example', 'same-jti', inSeconds(300))).toBe(true);
    expect(await store.claim('https://b.example', 'same-jti', inSeconds(300))).toBe(true);
  });

  it('lets exactly one of many simultaneous claims of one jti win', async () => {
    const store = new PostgresReplayStore(database.db, clock);
    const results = await Promise.all(Array.from({ length: 20 }, () => store.claim('https://issuer.example', 'raced', inSeconds(300))));
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('forgets a jti once its token can no longer be accepted, and purges the row', async () => {
    const local = new ManualClock(clock.now());
    const store = new PostgresReplayStore(database.db, local, { purgeIntervalMs: 60_000 });
    expect(await store.claim('https://issuer.example', 'short-lived', new Date(local.now().getTime() + 30_000))).toBe(true);
    local.advance(30_000);
    // Its time has come: the row is taken over instead of refusing a token that could not pass anyway.
    expect(await store.claim('https://issuer.example', 'short-lived', new Date(local.now().getTime() + 30_000))).toBe(true);
    local.advance(31_000);
    expect(await store.purgeExpired()).toBeGreaterThanOrEqual(1);
    const left = await database.db.query(`SELECT count(*)::int AS n FROM used_token_ids WHERE jti = 'short-lived'`);
    expect(left.rows[0]?.n).toBe(0);
  });
});

describe('replayed tokens across broker replicas', () => {
  it('a token used at one replica is refused at another that shares the database', async () => {
    // Two brokers: separate connection pools, separate verifiers, one database.
    const first = new Database(database.url, 2);
    const second = new Database(database.url, 2);
    try {
      const verifierAt = (db: Database) =>
        createIdentityVerifier({ issuers: [idp.issuerConfig()], clock, replay: new PostgresReplayStore(db, clock) });
      const replicaA = verifierAt(first);
      const replicaB = verifierAt(second);
      const token = await idp.token({}, { alg: 'ES256' });

      await replicaA.verify(token, { consume: true });
      const err = await replicaB.verify(token, { consume: true }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LatchkeyError);
      expect((err as LatchkeyError).code).toBe('token_replayed');
      expect((err as LatchkeyError).message).not.toContain(token);

      // Racing the same fresh token at both replicas: one wins, the other is refused.
      const raced = await idp.token({}, { alg: 'ES256' });
      const outcomes = await Promise.allSettled([replicaA.verify(raced, { consume: true }), replicaB.verify(raced, { consume: true })]);
      expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
    } finally {
      await first.close();
      await second.close();
    }
  });
});
