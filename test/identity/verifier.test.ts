import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { ConfigError, LatchkeyError } from '../../src/errors.js';
import { GITHUB_ACTIONS_ISSUER } from '../../src/identity/github.js';
import type { ReplayStore } from '../../src/identity/types.js';
import { createIdentityVerifier, MAX_TOKEN_BYTES } from '../../src/identity/verifier.js';
import { SIGNING_ALGORITHMS, TestOidcIssuer } from '../support/oidc-issuer.js';

/** Remembers jtis in memory: these tests are about the token, the database store has its own file. */
class MemoryReplayStore implements ReplayStore {
  readonly used = new Set<string>();
  async claim(issuer: string, jti: string): Promise<boolean> {
    const key = `${issuer} ${jti}`;
    if (this.used.has(key)) return false;
    this.used.add(key);
    return true;
  }
}

const clock = new ManualClock('2026-03-01T12:00:00Z');
let idp: TestOidcIssuer;
let sso: TestOidcIssuer;

beforeAll(async () => {
  idp = await TestOidcIssuer.start({ clock });
  sso = await TestOidcIssuer.start({ clock, path: '/oauth2/default', algorithms: ['ES256'] });
});
afterAll(async () => {
  await idp.close();
  await sso.close();
});

function verifierFor(...configs: Parameters<typeof createIdentityVerifier>[0]['issuers']) {
  return createIdentityVerifier({ issuers: configs, clock, replay: new MemoryReplayStore() });
}

/** Runs `verify` expecting a refusal; returns it so the test can look at code and message. */
async function refusalOf(promise: Promise<unknown>): Promise<LatchkeyError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected the token to be refused').toBeInstanceOf(LatchkeyError);
  return err as LatchkeyError;
}

describe('a valid token', () => {
  it.each(SIGNING_ALGORITHMS)('signed with %s is accepted', async (alg) => {
    const verifier = verifierFor(idp.issuerConfig());
    const token = await idp.token({ sub: `user-${alg}` }, { alg });
    const identity = await verifier.verify(token, { consume: true });
    expect(identity.issuerName).toBe('test');
    expect(identity.issuer).toBe(idp.url);
    expect(identity.subject).toBe(`user-${alg}`);
  });

  it('yields its claims, a SHA-256 of the token, and its expiry', async () => {
    const verifier = verifierFor(idp.issuerConfig());
    const token = await idp.token({ team: 'payments' });
    const identity = await verifier.verify(token, { consume: false });
    expect(identity.claims.team).toBe('payments');
    expect(identity.tokenHash).toBe(createHash('sha256').update(token).digest('hex'));
    expect(identity.expiresAt).toEqual(new Date(clock.now().getTime() + 600_000));
    expect(JSON.stringify(identity)).not.toContain(token);
  });

  it('names the caller by the configured subject claim', async () => {
    const verifier = verifierFor(sso.issuerConfig({ name: 'corp-sso', subject_claim: 'email' }));
    const identity = await verifier.verify(await sso.ssoToken(), { consume: true });
    expect(identity.subject).toBe('ada@example.com');
    expect(identity.claims.groups).toEqual(['engineering', 'auditors']);
    expect(identity.claims.amr).toEqual(['pwd', 'hwk']);
  });

  it('without the subject claim is refused, naming the claim', async () => {
    const verifier = verifierFor(sso.issuerConfig({ subject_claim: 'email' }));
    const err = await refusalOf(verifier.verify(await sso.ssoToken({ email: undefined }), { consume: false }));
    expect(err.code).toBe('token_claim_invalid');
    expect(err.message).toContain('email');
  });

  it('from either of two issuers is checked against its own issuer', async () => {
    const verifier = verifierFor(idp.issuerConfig({ name: 'github' }), sso.issuerConfig({ name: 'corp-sso' }));
    expect((await verifier.verify(await sso.ssoToken(), { consume: true })).issuerName).toBe('corp-sso');
    expect((await verifier.verify(await idp.githubToken(), { consume: true })).issuerName).toBe('github');
    // An SSO token signed with the GitHub issuer's key does not pass as SSO.
    const crossed = await idp.sign(sso.ssoClaims(), { alg: 'ES256' });
    expect((await refusalOf(verifier.verify(crossed, { consume: false }))).code).toBe('token_key_unknown');
  });
});

describe('GitHub Actions tokens', () => {
  // The test issuer stands in for GitHub Enterprise Server: preset github with its own issuer URL.
  const github = () => idp.issuerConfig({ name: 'github', preset: 'github' });

  it.each(['name', 'immutable'] as const)('with a %s-format sub are accepted with every documented claim', async (subjectFormat) => {
    const verifier = verifierFor(github());
    const identity = await verifier.verify(await idp.githubToken({}, { subjectFormat }), { consume: true });
    expect(identity.subject).toBe(subjectFormat === 'name' ? 'repo:octo-org/octo-repo:environment:prod' : 'repo:octo-org@65/octo-repo@74:environment:prod');
    expect(identity.claims).toMatchObject({ repository: 'octo-org/octo-repo', repository_id: '74', repository_owner_id: '65', runner_environment: 'github-hosted' });
  });

  it('preset github without an issuer trusts token.actions.githubusercontent.com, and nothing else', async () => {
    const verifier = verifierFor({ ...idp.issuerConfig({ name: 'github', preset: 'github' }), issuer: undefined, allow_insecure_http: false });
    const err = await refusalOf(verifier.verify(await idp.githubToken(), { consume: false }));
    expect(err.code).toBe('token_issuer_unknown');
    expect(err.message).toContain(idp.url);
    expect(verifier.issuerStatus()[0]?.issuer).toBe(GITHUB_ACTIONS_ISSUER);
  });

  it('with GitHub\'s default audience are refused when the broker asked for its own', async () => {
    const verifier = verifierFor(github());
    const err = await refusalOf(verifier.verify(await idp.githubToken({ aud: 'https://github.com/octo-org' }), { consume: false }));
    expect(err.code).toBe('token_audience_mismatch');
    expect(err.message).toBe('audience was ["https://github.com/octo-org"] not "latchkey"');
  });
});

describe('time', () => {
  it('an expired token is refused with the time it expired', async () => {
    const verifier = verifierFor(idp.issuerConfig({ leeway: 0 }));
    const token = await idp.token();
    const expiredAt = new Date(clock.now().getTime() + 600_000).toISOString();
    const later = new ManualClock(clock.now().getTime() + 601_000);
    const lateVerifier = createIdentityVerifier({ issuers: [idp.issuerConfig({ leeway: 0 })], clock: later, replay: new MemoryReplayStore() });
    const err = await refusalOf(lateVerifier.verify(token, { consume: false }));
    expect(err.code).toBe('token_expired');
    expect(err.message).toContain(`expired at ${expiredAt}`);
    await expect(verifier.verify(token, { consume: false })).resolves.toBeDefined();
  });

  it('leeway lets a token that expired seconds ago through, and no further', async () => {
    const token = await idp.token();
    const at = (seconds: number) =>
      createIdentityVerifier({ issuers: [idp.issuerConfig({ leeway: 30 })], clock: new ManualClock(clock.now().getTime() + seconds * 1000), replay: new MemoryReplayStore() });
    await expect(at(600 + 29).verify(token, { consume: false })).resolves.toBeDefined();
    expect((await refusalOf(at(600 + 30).verify(token, { consume: false }))).code).toBe('token_expired');
  });

  it('a token whose nbf is in the future is refused as not yet valid', async () => {
    const verifier = verifierFor(idp.issuerConfig({ leeway: 30 }));
    const now = Math.floor(clock.now().getTime() / 1000);
    const err = await refusalOf(verifier.verify(await idp.token({ nbf: now + 120 }), { consume: false }));
    expect(err.code).toBe('token_not_yet_valid');
    expect(err.message).toContain(`not valid before ${new Date((now + 120) * 1000).toISOString()}`);
  });

  it('a token issued in the future is refused as not yet valid', async () => {
    const verifier = verifierFor(idp.issuerConfig({ leeway: 30 }));
    const now = Math.floor(clock.now().getTime() / 1000);
    const err = await refusalOf(verifier.verify(await idp.token({ iat: now + 120, nbf: undefined }), { consume: false }));
    expect(err.code).toBe('token_not_yet_valid');
  });

  it('a token older than max_token_age is refused even though it has not expired', async () => {
    const verifier = verifierFor(idp.issuerConfig({ max_token_age: 300, leeway: 0 }));
    const now = Math.floor(clock.now().getTime() / 1000);
    const old = await idp.token({ iat: now - 301, exp: now + 3600 });
    const err = await refusalOf(verifier.verify(old, { consume: false }));
    expect(err.code).toBe('token_too_old');
    expect(err.message).toContain('more than 300s ago');
    await expect(verifier.verify(await idp.token({ iat: now - 299, exp: now + 3600 }), { consume: false })).resolves.toBeDefined();
  });

  it('a token without exp is refused', async () => {
    const verifier = verifierFor(idp.issuerConfig());
    const err = await refusalOf(verifier.verify(await idp.token({ exp: undefined }), { consume: false }));
    expect(err.code).toBe('token_claim_invalid');
    expect(err.message).toContain('exp');
  });

  it('a token without iat is refused, since its age cannot be told', async () => {
    const verifier = verifierFor(idp.issuerConfig());
    const err = await refusalOf(verifier.verify(await idp.token({ iat: undefined }), { consume: false }));
    expect(err.code).toBe('token_claim_invalid');
    expect(err.message).toContain('iat');
  });
});

describe('forged and malformed tokens are refused with the right code', () => {
  type Case = { name: string; code: string; token: () => Promise<string> | string; message?: RegExp };
  const cases: Case[] = [
    { name: 'alg: none', code: 'token_alg_rejected', token: () => idp.unsignedToken(idp.baseClaims()), message: /^the token's algorithm "none" is not accepted; accepted: RS256, PS256, ES256, EdDSA$/ },
    { name: 'HS256 keyed with the issuer\'s RSA public key', code: 'token_alg_rejected', token: () => idp.hs256WithPublicKey(idp.baseClaims()), message: /algorithm "HS256" is not accepted/ },
    { name: 'HS256 keyed with the issuer\'s EC public key', code: 'token_alg_rejected', token: () => idp.hs256WithPublicKey(idp.baseClaims(), 'ES256') },
    { name: 'signed with another key under the issuer\'s kid', code: 'token_signature_invalid', token: () => idp.signWithForeignKey(idp.baseClaims()) },
    { name: 'signed with another EdDSA key under the issuer\'s kid', code: 'token_signature_invalid', token: () => idp.signWithForeignKey(idp.baseClaims(), { alg: 'EdDSA' }) },
    { name: 'signed with a key of an unknown kid', code: 'token_key_unknown', token: () => idp.signWithForeignKey(idp.baseClaims(), { kid: 'own' }) },
    { name: 'a wrong iss', code: 'token_issuer_unknown', token: () => idp.token({ iss: 'https://evil.example' }), message: /"https:\/\/evil\.example" is not trusted/ },
    { name: 'no iss', code: 'token_issuer_unknown', token: () => idp.token({ iss: undefined }) },
    { name: 'an iss that differs by a trailing slash', code: 'token_issuer_unknown', token: () => idp.token({ iss: `${idp.url}/` }) },
    { name: 'a wrong aud', code: 'token_audience_mismatch', token: () => idp.token({ aud: ['other', 'another'] }), message: /^audience was \["other", "another"\] not "latchkey"$/ },
    { name: 'no aud', code: 'token_claim_invalid', token: () => idp.token({ aud: undefined }) },
    { name: 'a payload that is not base64url', code: 'token_malformed', token: async () => { const [h, , s] = (await idp.token()).split('.'); return `${h}.eyJ!!!.${s}`; } },
    { name: 'a header that is not base64url', code: 'token_malformed', token: async () => { const [, p, s] = (await idp.token()).split('.'); return `%%%%.${p}.${s}`; } },
    { name: 'a signature that is not base64url', code: 'token_malformed', token: async () => `${(await idp.token()).split('.').slice(0, 2).join('.')}.***` },
    { name: 'a payload that is JSON but not an object', code: 'token_malformed', token: async () => { const [h, , s] = (await idp.token()).split('.'); return `${h}.${Buffer.from('[1,2]').toString('base64url')}.${s}`; } },
    { name: 'a crit header naming an unknown extension', code: 'token_malformed', token: () => idp.signRaw({ alg: 'ES256', kid: idp.key('ES256').kid, crit: ['x-foo'], 'x-foo': 1 }, idp.baseClaims()) },
    { name: 'an unencoded payload (b64: false)', code: 'token_malformed', token: () => idp.signRaw({ alg: 'ES256', kid: idp.key('ES256').kid, crit: ['b64'], b64: false }, idp.baseClaims()) },
    { name: 'a kid that is not a string', code: 'token_key_unknown', token: () => idp.signRaw({ alg: 'ES256', kid: 7 }, idp.baseClaims()), message: /kid is not a string/ },
    { name: 'two parts', code: 'token_malformed', token: async () => (await idp.token()).split('.').slice(0, 2).join('.') },
    { name: 'a JWE instead of a JWS', code: 'token_malformed', token: () => 'eyJhbGciOiJSU0EtT0FFUC0yNTYiLCJlbmMiOiJBMjU2R0NNIn0.a2V5.aXY.Y2lwaGVydGV4dA.dGFn', message: /encrypted \(a JWE\)/ },
    { name: 'not a JWT at all', code: 'token_malformed', token: () => 'ghp_notajwtatall' },
    { name: 'an empty string', code: 'token_missing', token: () => '' },
    { name: 'over 16 KiB', code: 'token_too_large', token: () => idp.token({ padding: 'x'.repeat(MAX_TOKEN_BYTES) }) },
    { name: 'an OAuth access token (typ at+jwt) from the trusted issuer', code: 'token_claim_invalid', token: () => idp.sign(idp.baseClaims(), { alg: 'ES256', header: { typ: 'at+jwt' } }), message: /access token/ },
  ];

  it('the hand-signing helper makes tokens the verifier accepts when nothing is wrong with them', async () => {
    for (const alg of SIGNING_ALGORITHMS) {
      const token = idp.signRaw({ alg, kid: idp.key(alg).kid, typ: 'JWT' }, idp.baseClaims(), alg);
      await expect(verifierFor(idp.issuerConfig()).verify(token, { consume: true })).resolves.toBeDefined();
    }
  });

  it.each(cases)('$name -> $code', async ({ token, code, message }) => {
    const verifier = verifierFor(idp.issuerConfig());
    const raw = await token();
    const err = await refusalOf(verifier.verify(raw, { consume: true }));
    expect(err.code).toBe(code);
    expect(err.status).toBe(401);
    if (message) expect(err.message).toMatch(message);
    // Never the token, nor its signature, in what the caller or a log sees.
    const visible = `${err.message} ${JSON.stringify(err.detail)}`;
    if (raw.length > 0) expect(visible).not.toContain(raw);
    const signature = raw.split('.')[2];
    if (signature && signature.length > 8) expect(visible).not.toContain(signature);
  });

  it('an oversized token is refused before anything is parsed or fetched', async () => {
    const fresh = await TestOidcIssuer.start({ clock });
    try {
      const verifier = verifierFor(fresh.issuerConfig());
      const huge = `${'a'.repeat(MAX_TOKEN_BYTES)}.b.c`;
      expect((await refusalOf(verifier.verify(huge, { consume: false }))).code).toBe('token_too_large');
      // Multi-byte characters count by bytes, not by characters.
      const wide = `${'é'.repeat(MAX_TOKEN_BYTES / 2 + 1)}.b.c`;
      expect((await refusalOf(verifier.verify(wide, { consume: false }))).code).toBe('token_too_large');
      expect(fresh.requests).toEqual({ discovery: 0, jwks: 0, other: 0 });
    } finally {
      await fresh.close();
    }
  });

  it('a token from an unknown issuer causes no request to any issuer', async () => {
    const fresh = await TestOidcIssuer.start({ clock });
    try {
      const verifier = verifierFor(fresh.issuerConfig());
      expect((await refusalOf(verifier.verify(await idp.token(), { consume: false }))).code).toBe('token_issuer_unknown');
      expect(fresh.requests).toEqual({ discovery: 0, jwks: 0, other: 0 });
    } finally {
      await fresh.close();
    }
  });
});

describe('key-carrying headers are ignored', () => {
  it.each([
    ['jku', (attacker: TestOidcIssuer) => ({ jku: attacker.jwksUrl })],
    ['x5u', (attacker: TestOidcIssuer) => ({ x5u: `${attacker.url}/cert.pem` })],
    ['jwk', (attacker: TestOidcIssuer) => ({ jwk: attacker.key('RS256').publicJwk })],
    ['jku + jwk + x5u', (attacker: TestOidcIssuer) => ({ jku: attacker.jwksUrl, x5u: `${attacker.url}/cert.pem`, jwk: attacker.key('RS256').publicJwk })],
  ])('a token signed by an attacker whose %s header points at the attacker\'s key is refused, and nothing is fetched from there', async (_name, headerOf) => {
    const attacker = await TestOidcIssuer.start({ clock, algorithms: ['RS256'] });
    try {
      const verifier = verifierFor(idp.issuerConfig());
      const header = headerOf(attacker);
      // The attacker signs with its own key, naming its own kid, and also tries the issuer's kid.
      const ownKid = await idp.sign(idp.baseClaims(), { key: attacker.key('RS256').privateKey, kid: attacker.key('RS256').kid, header });
      const issuerKid = await idp.sign(idp.baseClaims(), { key: attacker.key('RS256').privateKey, kid: idp.key('RS256').kid, header });
      expect((await refusalOf(verifier.verify(ownKid, { consume: false }))).code).toBe('token_key_unknown');
      expect((await refusalOf(verifier.verify(issuerKid, { consume: false }))).code).toBe('token_signature_invalid');
      expect(attacker.requests).toEqual({ discovery: 0, jwks: 0, other: 0 });
    } finally {
      await attacker.close();
    }
  });

  it('a genuine token that also carries a jku header is judged by the issuer\'s keys alone', async () => {
    const verifier = verifierFor(idp.issuerConfig());
    const token = await idp.token({}, { header: { jku: 'http://127.0.0.1:9/jwks' } });
    await expect(verifier.verify(token, { consume: false })).resolves.toBeDefined();
  });
});

describe('single-use jti', () => {
  it('a second use of a token to obtain a credential is refused as replayed', async () => {
    const verifier = verifierFor(idp.issuerConfig());
    const token = await idp.token();
    await verifier.verify(token, { consume: true });
    const err = await refusalOf(verifier.verify(token, { consume: true }));
    expect(err.code).toBe('token_replayed');
  });

  it('reads do not use the token up', async () => {
    const verifier = verifierFor(idp.issuerConfig());
    const token = await idp.token();
    await verifier.verify(token, { consume: false });
    await verifier.verify(token, { consume: false });
    await verifier.verify(token, { consume: true });
    await expect(verifier.verify(token, { consume: false })).resolves.toBeDefined();
  });

  it('a token without jti is refused where jtis are single-use, and accepted where they are not', async () => {
    const token = await idp.token({ jti: undefined });
    const err = await refusalOf(verifierFor(idp.issuerConfig()).verify(token, { consume: true }));
    expect(err.code).toBe('token_claim_invalid');
    expect(err.message).toContain('jti');
    const relaxed = verifierFor(idp.issuerConfig({ single_use_jti: false }));
    await relaxed.verify(token, { consume: true });
    await expect(relaxed.verify(token, { consume: true })).resolves.toBeDefined();
  });

  it('the replay store is told to remember the jti until exp plus leeway', async () => {
    const remembered: Date[] = [];
    const verifier = createIdentityVerifier({
      issuers: [idp.issuerConfig({ leeway: 45 })],
      clock,
      replay: { claim: async (_issuer, _jti, until) => (remembered.push(until), true) },
    });
    await verifier.verify(await idp.token(), { consume: true });
    expect(remembered).toEqual([new Date(clock.now().getTime() + 600_000 + 45_000)]);
  });
});

describe('configuration mistakes fail at construction', () => {
  it('a dev issuer outside dev mode', () => {
    expect(() => verifierFor({ ...idp.issuerConfig(), preset: 'dev', issuer: undefined })).toThrow(ConfigError);
    expect(() => verifierFor({ ...idp.issuerConfig(), preset: 'dev', issuer: undefined })).toThrow(/issuers\[0\]\.preset/);
  });

  it('plain http without allow_insecure_http', () => {
    expect(() => verifierFor(idp.issuerConfig({ allow_insecure_http: false }))).toThrow(/issuers\[0\]\.issuer: expected an https URL/);
  });

  it('the same iss twice', () => {
    expect(() => verifierFor(idp.issuerConfig({ name: 'a' }), idp.issuerConfig({ name: 'b' }))).toThrow(/issuers\[1\]\.issuer: .* already configured as issuer "a"/);
  });
});
