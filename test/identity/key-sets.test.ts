import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { LatchkeyError } from '../../src/errors.js';
import { createIdentityVerifier, type IdentityVerifierOptions } from '../../src/identity/verifier.js';
import { TestOidcIssuer, type TestOidcIssuerOptions } from '../support/oidc-issuer.js';

const COOLDOWN_MS = 10_000;
const RETRY_MS = 10_000;

let clock: ManualClock;
const started: TestOidcIssuer[] = [];

async function startIssuer(options: TestOidcIssuerOptions = {}): Promise<TestOidcIssuer> {
  clock ??= new ManualClock('2026-03-01T12:00:00Z');
  const issuer = await TestOidcIssuer.start({ clock, algorithms: ['ES256'], ...options });
  started.push(issuer);
  return issuer;
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((issuer) => issuer.close()));
});

function verifierFor(idp: TestOidcIssuer, options: Partial<IdentityVerifierOptions> = {}) {
  return createIdentityVerifier({
    issuers: [idp.issuerConfig()],
    clock,
    replay: { claim: async () => true },
    keyRefreshCooldownMs: COOLDOWN_MS,
    discoveryRetryMs: RETRY_MS,
    ...options,
  });
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LatchkeyError);
  return (err as LatchkeyError).code;
}

describe('discovery and key loading', () => {
  it('nothing is fetched until the first token (or readiness check) needs the keys', async () => {
    const idp = await startIssuer();
    const verifier = verifierFor(idp);
    expect(idp.requests).toEqual({ discovery: 0, jwks: 0, other: 0 });
    await verifier.verify(await idp.token({}, { alg: 'ES256' }), { consume: false });
    await verifier.verify(await idp.token({}, { alg: 'ES256' }), { consume: false });
    expect(idp.requests).toEqual({ discovery: 1, jwks: 1, other: 0 });
  });

  it('twenty tokens arriving at once on a cold broker cause one discovery and one key fetch', async () => {
    const idp = await startIssuer();
    const verifier = verifierFor(idp);
    const tokens = await Promise.all(Array.from({ length: 20 }, () => idp.token({}, { alg: 'ES256' })));
    await Promise.all(tokens.map((token) => verifier.verify(token, { consume: false })));
    expect(idp.requests).toEqual({ discovery: 1, jwks: 1, other: 0 });
  });

  it('ready() loads every issuer and says whether all keys are in', async () => {
    const idp = await startIssuer();
    const sso = await startIssuer({ path: '/sso' });
    const verifier = createIdentityVerifier({
      issuers: [idp.issuerConfig({ name: 'a' }), sso.issuerConfig({ name: 'b' })],
      clock,
      replay: { claim: async () => true },
    });
    expect(verifier.issuerStatus().map((s) => s.loaded)).toEqual([false, false]);
    expect(await verifier.ready()).toBe(true);
    expect(verifier.issuerStatus()).toEqual([
      { name: 'a', issuer: idp.url, loaded: true, jwksUri: idp.jwksUrl, lastError: undefined },
      { name: 'b', issuer: sso.url, loaded: true, jwksUri: sso.jwksUrl, lastError: undefined },
    ]);
    expect(await verifier.ready()).toBe(true);
    expect([idp.requests.jwks, sso.requests.jwks]).toEqual([1, 1]);
  });

  it('discovery_url says where the document is read, while iss stays the configured issuer', async () => {
    const idp = await startIssuer({ advertisedIssuer: 'https://login.example.com' });
    const verifier = createIdentityVerifier({
      issuers: [idp.issuerConfig({ issuer: 'https://login.example.com', discovery_url: idp.discoveryUrl })],
      clock,
      replay: { claim: async () => true },
    });
    const identity = await verifier.verify(await idp.token({ iss: 'https://login.example.com' }, { alg: 'ES256' }), { consume: false });
    expect(identity.issuer).toBe('https://login.example.com');
    expect(idp.requests.discovery).toBe(1);
  });

  it('a discovery document that names another issuer is not trusted', async () => {
    const idp = await startIssuer({ advertisedIssuer: 'https://someone-else.example' });
    const verifier = verifierFor(idp);
    const err = await verifier.verify(await idp.token({}, { alg: 'ES256' }), { consume: false }).catch((e: LatchkeyError) => e);
    expect((err as LatchkeyError).code).toBe('issuer_unavailable');
    expect((err as LatchkeyError).message).toContain('names issuer "https://someone-else.example"');
    expect(await verifier.ready()).toBe(false);
  });
});

describe('an issuer that is down', () => {
  it('does not stop the verifier from being built, and is retried later, not on every token', async () => {
    const idp = await startIssuer();
    idp.respondToDiscovery({ status: 503, body: 'down' });
    const verifier = verifierFor(idp);
    const token = await idp.token({}, { alg: 'ES256' });

    expect(await codeOf(verifier.verify(token, { consume: false }))).toBe('issuer_unavailable');
    expect(await verifier.ready()).toBe(false);
    for (let i = 0; i < 10; i += 1) expect(await codeOf(verifier.verify(token, { consume: false }))).toBe('issuer_unavailable');
    expect(idp.requests.discovery).toBe(1);
    expect(verifier.issuerStatus()[0]?.lastError).toMatch(/discovery of issuer "test"/);

    idp.respondToDiscovery(undefined);
    clock.advance(RETRY_MS);
    await expect(verifier.verify(token, { consume: false })).resolves.toBeDefined();
    expect(await verifier.ready()).toBe(true);
    expect(idp.requests.discovery).toBe(2);
    expect(verifier.issuerStatus()[0]?.lastError).toBeUndefined();
  });

  it('a key set answering 500 makes tokens unverifiable (503), not invalid (401)', async () => {
    const idp = await startIssuer();
    idp.respondToJwks({ status: 500, body: '{}' });
    const verifier = verifierFor(idp);
    const err = await verifier.verify(await idp.token({}, { alg: 'ES256' }), { consume: false }).catch((e: LatchkeyError) => e);
    expect((err as LatchkeyError).code).toBe('issuer_unavailable');
    expect((err as LatchkeyError).status).toBe(503);
  });

  it('a key set larger than the cap is refused without being parsed', async () => {
    const idp = await startIssuer();
    const padding = 'x'.repeat(300 * 1024);
    idp.respondToJwks({ body: JSON.stringify({ keys: idp.keys.map((k) => ({ ...k.publicJwk, padding })) }) });
    const verifier = verifierFor(idp);
    const err = await verifier.verify(await idp.token({}, { alg: 'ES256' }), { consume: false }).catch((e: LatchkeyError) => e);
    expect((err as LatchkeyError).code).toBe('issuer_unavailable');
    expect((err as LatchkeyError).message).toContain(`larger than ${256 * 1024} bytes`);
  });

  it('a key set sent without content-length is cut off at the cap as well', async () => {
    const idp = await startIssuer();
    idp.respondToJwks({ body: `{"keys":[],"x":"${'y'.repeat(2 * 1024 * 1024)}"}`, headers: { 'transfer-encoding': 'chunked' } });
    const verifier = verifierFor(idp, { maxResponseBytes: 64 * 1024 });
    const err = await verifier.verify(await idp.token({}, { alg: 'ES256' }), { consume: false }).catch((e: LatchkeyError) => e);
    expect((err as LatchkeyError).message).toContain(`larger than ${64 * 1024} bytes`);
  });

  it('a key set that never answers is given up on after the fetch timeout', async () => {
    const idp = await startIssuer();
    idp.respondToJwks('hang');
    const verifier = verifierFor(idp, { fetchTimeoutMs: 300 });
    const err = await verifier.verify(await idp.token({}, { alg: 'ES256' }), { consume: false }).catch((e: LatchkeyError) => e);
    expect((err as LatchkeyError).code).toBe('issuer_unavailable');
    expect((err as LatchkeyError).message).toContain('timed out');
  });

  it('a discovery document that never answers is given up on after the fetch timeout', async () => {
    const idp = await startIssuer();
    idp.respondToDiscovery('hang');
    const verifier = verifierFor(idp, { fetchTimeoutMs: 300 });
    expect(await codeOf(verifier.verify(await idp.token({}, { alg: 'ES256' }), { consume: false }))).toBe('issuer_unavailable');
  });
});

describe('unknown kid', () => {
  it('a flood of tokens with made-up kids causes at most one key fetch per cooldown', async () => {
    const idp = await startIssuer();
    const verifier = verifierFor(idp);
    await verifier.verify(await idp.token({}, { alg: 'ES256' }), { consume: false });
    expect(idp.requests.jwks).toBe(1);

    const flood = await Promise.all(Array.from({ length: 50 }, () => idp.signWithForeignKey(idp.baseClaims(), { alg: 'ES256', kid: 'own' })));
    const codes = await Promise.all(flood.map((token) => codeOf(verifier.verify(token, { consume: false }))));
    expect(new Set(codes)).toEqual(new Set(['token_key_unknown']));
    for (const token of flood) expect(await codeOf(verifier.verify(token, { consume: false }))).toBe('token_key_unknown');
    expect(idp.requests.jwks).toBe(1);

    clock.advance(COOLDOWN_MS);
    const second = await Promise.all(flood.map((token) => codeOf(verifier.verify(token, { consume: false }))));
    expect(new Set(second)).toEqual(new Set(['token_key_unknown']));
    expect(idp.requests.jwks).toBe(2);
    expect(idp.requests.discovery).toBe(1);
  });

  it('a key the issuer rotated in is picked up once the cooldown has passed', async () => {
    const idp = await startIssuer();
    const verifier = verifierFor(idp);
    await verifier.verify(await idp.token({}, { alg: 'ES256' }), { consume: false });
    const rotated = await idp.addKey('ES256', 'rotated-2026-03');
    const token = await idp.sign(idp.baseClaims(), { alg: 'ES256', key: rotated.privateKey, kid: rotated.kid });

    const err = await verifier.verify(token, { consume: false }).catch((e: LatchkeyError) => e);
    expect((err as LatchkeyError).code).toBe('token_key_unknown');
    expect((err as LatchkeyError).message).toBe('issuer "test" has no signing key with kid "rotated-2026-03"');

    clock.advance(COOLDOWN_MS);
    await expect(verifier.verify(token, { consume: false })).resolves.toBeDefined();
    expect(idp.requests.jwks).toBe(2);
  });

  it('keys older than their maximum age are refreshed in the background while the old ones keep working', async () => {
    const idp = await startIssuer();
    const verifier = verifierFor(idp, { keyMaxAgeMs: 60_000 });
    await verifier.verify(await idp.token({}, { alg: 'ES256' }), { consume: false });
    clock.advance(61_000);
    await expect(verifier.verify(await idp.token({}, { alg: 'ES256' }), { consume: false })).resolves.toBeDefined();
    await expect.poll(() => idp.requests.jwks).toBe(2);
  });

  it('an issuer whose key set fails to refresh keeps verifying with the keys it has', async () => {
    const idp = await startIssuer();
    const verifier = verifierFor(idp, { keyMaxAgeMs: 60_000 });
    await verifier.verify(await idp.token({}, { alg: 'ES256' }), { consume: false });
    idp.respondToJwks({ status: 500, body: '{}' });
    clock.advance(61_000);
    await expect(verifier.verify(await idp.token({}, { alg: 'ES256' }), { consume: false })).resolves.toBeDefined();
    await expect.poll(() => idp.requests.jwks).toBe(2);
    await expect(verifier.verify(await idp.token({}, { alg: 'ES256' }), { consume: false })).resolves.toBeDefined();
  });
});
