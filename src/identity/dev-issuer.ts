import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK } from 'jose';
import { epochSeconds, type Clock } from '../clock.js';
import { ConfigError, InvalidRequest } from '../errors.js';

/**
 * DEVELOPMENT ONLY. The token issuer that `latchkey dev` serves under
 * `<broker URL>/dev/oidc`, so a new user can mint a token and try a grant
 * without an SSO or GitHub. Anyone who can reach the broker can mint any
 * claims with it: it must never run in `latchkey serve`, and the verifier
 * accepts its tokens only through an issuer with `preset: dev`, which exists
 * only when the dev command passes `devIssuerUrl`.
 *
 * Routes the broker serves, relative to the issuer URL:
 * `DEV_ISSUER_DISCOVERY_PATH` -> `discoveryDocument()`, `DEV_ISSUER_JWKS_PATH` -> `jwks()`.
 */

/** File in the data folder that keeps the dev issuer's private key (mode 0600). */
export const DEV_ISSUER_KEY_FILE = 'dev-issuer-key.json';
/** Discovery document path, relative to the dev issuer URL. */
export const DEV_ISSUER_DISCOVERY_PATH = '/.well-known/openid-configuration';
/** JWKS path, relative to the dev issuer URL. */
export const DEV_ISSUER_JWKS_PATH = '/jwks';
/** `aud` of development tokens unless `mint` is told otherwise. */
export const DEV_TOKEN_AUDIENCE = 'latchkey';
/** Lifetime of a development token unless `mint` is told otherwise. */
export const DEV_TOKEN_DEFAULT_TTL_SECONDS = 600;
/** Longest lifetime `mint` will give. */
export const DEV_TOKEN_MAX_TTL_SECONDS = 3600;

// The issuer sets these itself; a caller-supplied value would make the token lie about where it came from.
const RESERVED_CLAIMS = ['iss', 'aud', 'iat', 'nbf', 'exp', 'jti'] as const;

interface StoredKey {
  readonly kid: string;
  readonly privateJwk: JWK;
}

export interface DevTokenOptions {
  /** Seconds until `exp` (default 600, at most 3600). */
  readonly ttlSeconds?: number;
  /** `aud` (default `latchkey`). */
  readonly audience?: string;
}

export class DevIssuer {
  /** The issuer URL, exactly as it appears in `iss`. */
  readonly issuerUrl: string;
  readonly #kid: string;
  readonly #privateKey: CryptoKey;
  readonly #publicJwk: JWK;
  readonly #clock: Clock;

  private constructor(issuerUrl: string, kid: string, privateKey: CryptoKey, publicJwk: JWK, clock: Clock) {
    this.issuerUrl = issuerUrl;
    this.#kid = kid;
    this.#privateKey = privateKey;
    this.#publicJwk = publicJwk;
    this.#clock = clock;
  }

  /**
   * DEVELOPMENT ONLY. Loads the dev issuer's ES256 key from
   * `<dataDir>/dev-issuer-key.json`, generating it (0600) on first use, so
   * tokens minted before a restart stay valid after it.
   */
  static async load(dataDir: string, issuerUrl: string, clock: Clock): Promise<DevIssuer> {
    const file = path.join(dataDir, DEV_ISSUER_KEY_FILE);
    const stored = (await readStoredKey(file)) ?? (await createStoredKey(dataDir, file));
    const privateKey = (await importJWK(stored.privateJwk, 'ES256')) as CryptoKey;
    const { d: _private, ...publicJwk } = stored.privateJwk;
    return new DevIssuer(issuerUrl.replace(/\/$/, ''), stored.kid, privateKey, { ...publicJwk, kid: stored.kid, alg: 'ES256', use: 'sig' }, clock);
  }

  /** The OIDC discovery document to serve at `<issuer>/.well-known/openid-configuration`. */
  discoveryDocument(): Record<string, unknown> {
    return {
      issuer: this.issuerUrl,
      jwks_uri: `${this.issuerUrl}${DEV_ISSUER_JWKS_PATH}`,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['ES256'],
      claims_supported: ['sub', 'aud', 'exp', 'iat', 'iss', 'jti', 'nbf'],
      // Not part of OIDC: tells whoever reads the document what this is.
      'x-latchkey-development-only': true,
    };
  }

  /** The public key set to serve at `<issuer>/jwks`. */
  jwks(): { keys: JWK[] } {
    return { keys: [{ ...this.#publicJwk }] };
  }

  /**
   * DEVELOPMENT ONLY. Signs a token with `claims` plus `iss`, `aud`
   * (`latchkey`), `iat`, `nbf`, `exp`, a fresh `jti`, and `kid` in the header.
   * `sub` defaults to `dev-user`. Refuses (InvalidRequest) claims the issuer
   * sets itself and lifetimes outside 1..3600 s.
   */
  async mint(claims: Record<string, unknown>, options: DevTokenOptions = {}): Promise<string> {
    for (const reserved of RESERVED_CLAIMS) {
      if (Object.hasOwn(claims, reserved)) {
        throw new InvalidRequest(`claim ${reserved} is set by the development issuer and cannot be given`, { claim: reserved });
      }
    }
    const ttl = options.ttlSeconds ?? DEV_TOKEN_DEFAULT_TTL_SECONDS;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > DEV_TOKEN_MAX_TTL_SECONDS) {
      throw new InvalidRequest(`a development token lives 1 to ${DEV_TOKEN_MAX_TTL_SECONDS} seconds, got ${String(ttl)}`);
    }
    const now = epochSeconds(this.#clock.now());
    return new SignJWT({ sub: 'dev-user', ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: this.#kid, typ: 'JWT' })
      .setIssuer(this.issuerUrl)
      .setAudience(options.audience ?? DEV_TOKEN_AUDIENCE)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + ttl)
      .setJti(randomUUID())
      .sign(this.#privateKey);
  }
}

async function readStoredKey(file: string): Promise<StoredKey | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as Partial<StoredKey>;
    if (typeof parsed.kid !== 'string' || typeof parsed.privateJwk !== 'object' || parsed.privateJwk?.crv !== 'P-256' || typeof parsed.privateJwk.d !== 'string') {
      throw new Error('unexpected shape');
    }
    return parsed as StoredKey;
  } catch {
    throw new ConfigError(`${file}: not a development issuer key (expected {"kid", "privateJwk": P-256 private JWK}); delete it to generate a new one`);
  }
}

async function createStoredKey(dataDir: string, file: string): Promise<StoredKey> {
  await mkdir(dataDir, { recursive: true });
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const privateJwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(privateJwk);
  const stored: StoredKey = { kid, privateJwk };
  // Write aside, then link into place: a concurrent reader sees no file or a whole one, never half.
  const temporary = `${file}.${process.pid}.${randomUUID()}.tmp`;
  await writeFile(temporary, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await link(temporary, file);
  } catch (err) {
    // Another process created it first: use theirs, so both sign with one key.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const existing = await readStoredKey(file);
    if (existing) return existing;
    throw err;
  } finally {
    await unlink(temporary).catch(() => {});
  }
  return stored;
}
