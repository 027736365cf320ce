import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { issuerSchema } from '../../src/config/schema.js';
import { ConfigError, InvalidRequest, LatchkeyError } from '../../src/errors.js';
import { DEV_ISSUER_DISCOVERY_PATH, DEV_ISSUER_JWKS_PATH, DEV_ISSUER_KEY_FILE, DevIssuer } from '../../src/identity/dev-issuer.js';
import { createIdentityVerifier } from '../../src/identity/verifier.js';
import { TestOidcIssuer } from '../support/oidc-issuer.js';

const clock = new ManualClock('2026-03-01T12:00:00Z');
let dataDir: string;
let server: http.Server;
let brokerUrl: string;
let devIssuer: DevIssuer;

/** Stands in for the broker's `/dev/oidc` routes: serves what DevIssuer says, over real HTTP. */
beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'latchkey-dev-issuer-'));
  server = http.createServer((req, res) => {
    const route = req.url?.replace(/^\/dev\/oidc/, '');
    const body = route === DEV_ISSUER_DISCOVERY_PATH ? devIssuer.discoveryDocument() : route === DEV_ISSUER_JWKS_PATH ? devIssuer.jwks() : undefined;
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body ?? { error: 'not_found' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  brokerUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  devIssuer = await DevIssuer.load(dataDir, `${brokerUrl}/dev/oidc`, clock);
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(dataDir, { recursive: true, force: true });
});

const devConfig = () => issuerSchema.parse({ name: 'dev', preset: 'dev', audience: 'latchkey' });
const devVerifier = () => createIdentityVerifier({ issuers: [devConfig()], clock, replay: { claim: async () => true }, devIssuerUrl: `${brokerUrl}/dev/oidc` });

describe('the development issuer', () => {
  it('mints tokens that the broker in dev mode verifies through discovery and JWKS over HTTP', async () => {
    const token = await devIssuer.mint({ sub: 'alice', team: 'payments', groups: ['admins'] });
    const identity = await devVerifier().verify(token, { consume: true });
    expect(identity).toMatchObject({ issuerName: 'dev', issuer: `${brokerUrl}/dev/oidc`, subject: 'alice' });
    expect(identity.claims).toMatchObject({ aud: 'latchkey', team: 'payments', groups: ['admins'] });
    expect(typeof identity.claims.jti).toBe('string');
    expect(identity.expiresAt).toEqual(new Date(clock.now().getTime() + 600_000));
  });

  it('calls the holder dev-user when no sub is given, and honours a requested lifetime and audience', async () => {
    const token = await devIssuer.mint({ team: 'payments' }, { ttlSeconds: 120 });
    const identity = await devVerifier().verify(token, { consume: false });
    expect(identity.subject).toBe('dev-user');
    expect(identity.expiresAt).toEqual(new Date(clock.now().getTime() + 120_000));
    const elsewhere = await devIssuer.mint({}, { audience: 'someone-else' });
    const err = await devVerifier().verify(elsewhere, { consume: false }).catch((e: LatchkeyError) => e);
    expect((err as LatchkeyError).code).toBe('token_audience_mismatch');
  });

  it('will not let a caller set the claims that say where and when the token is from', async () => {
    for (const claim of ['iss', 'aud', 'exp', 'iat', 'nbf', 'jti']) {
      await expect(devIssuer.mint({ [claim]: 'x' })).rejects.toThrow(InvalidRequest);
    }
    await expect(devIssuer.mint({}, { ttlSeconds: 0 })).rejects.toThrow(/1 to 3600 seconds/);
    await expect(devIssuer.mint({}, { ttlSeconds: 7200 })).rejects.toThrow(/1 to 3600 seconds/);
  });

  it('is not trusted by a broker that is not in dev mode', async () => {
    const token = await devIssuer.mint({ sub: 'alice' });
    expect(() => createIdentityVerifier({ issuers: [devConfig()], clock, replay: { claim: async () => true } })).toThrow(ConfigError);
    const other = await TestOidcIssuer.start({ clock, algorithms: ['ES256'] });
    try {
      const production = createIdentityVerifier({ issuers: [other.issuerConfig()], clock, replay: { claim: async () => true } });
      const err = await production.verify(token, { consume: false }).catch((e: LatchkeyError) => e);
      expect((err as LatchkeyError).code).toBe('token_issuer_unknown');
    } finally {
      await other.close();
    }
  });

  it('publishes a discovery document pointing at its key set, marked development-only', () => {
    expect(devIssuer.discoveryDocument()).toMatchObject({
      issuer: `${brokerUrl}/dev/oidc`,
      jwks_uri: `${brokerUrl}/dev/oidc/jwks`,
      id_token_signing_alg_values_supported: ['ES256'],
      'x-latchkey-development-only': true,
    });
    const [key] = devIssuer.jwks().keys;
    expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(key).not.toHaveProperty('d');
  });

  it('keeps its key in the data folder, readable by the owner only, across restarts', async () => {
    const file = path.join(dataDir, DEV_ISSUER_KEY_FILE);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const token = await devIssuer.mint({ sub: 'alice' });
    const restarted = await DevIssuer.load(dataDir, `${brokerUrl}/dev/oidc`, clock);
    expect(restarted.jwks()).toEqual(devIssuer.jwks());
    // A token minted before the restart still verifies against the restarted issuer's keys.
    const previous = devIssuer;
    devIssuer = restarted;
    try {
      await expect(devVerifier().verify(token, { consume: false })).resolves.toBeDefined();
    } finally {
      devIssuer = previous;
    }
  });

  it('two processes starting at once on a fresh folder end up with one key', async () => {
    const fresh = await mkdtemp(path.join(tmpdir(), 'latchkey-dev-issuer-'));
    try {
      const loaded = await Promise.all(Array.from({ length: 5 }, () => DevIssuer.load(fresh, 'http://127.0.0.1:8420/dev/oidc', clock)));
      const kids = new Set(loaded.map((issuer) => issuer.jwks().keys[0]?.kid));
      expect(kids.size).toBe(1);
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });

  it('refuses a key file that is not its own, saying which file', async () => {
    const broken = await mkdtemp(path.join(tmpdir(), 'latchkey-dev-issuer-'));
    try {
      await writeFile(path.join(broken, DEV_ISSUER_KEY_FILE), '{"kid": "x"}');
      await expect(DevIssuer.load(broken, 'http://127.0.0.1:8420/dev/oidc', clock)).rejects.toThrow(new RegExp(`${DEV_ISSUER_KEY_FILE}: not a development issuer key`));
    } finally {
      await rm(broken, { recursive: true, force: true });
    }
  });
});
