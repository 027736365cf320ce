import { createHash } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import type { Clock } from '../clock.js';
import type { IssuerConfig } from '../config/schema.js';
import {
  LatchkeyError,
  TokenAlgorithmRejected,
  TokenAudienceMismatch,
  TokenClaimInvalid,
  TokenExpired,
  TokenMalformed,
  TokenMissing,
  TokenNotYetValid,
  TokenReplayed,
  TokenSignatureInvalid,
  TokenTooLarge,
  TokenTooOld,
  TokenUnknownIssuer,
} from '../errors.js';
import { IssuerKeys, type IssuerKeyStatus } from './issuer-keys.js';
import { resolveIssuers, type ResolvedIssuer } from './issuers.js';
import type { IdentityVerifier, ReplayStore, VerifiedIdentity, VerifyOptions } from './types.js';

/** Tokens larger than this are refused before any parsing (GitHub's are about 1.5 KiB). */
export const MAX_TOKEN_BYTES = 16 * 1024;

/** The only signature algorithms latchkey accepts: asymmetric, so a public key can never sign. */
export const ACCEPTED_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;

// A jti longer than this is not an id but an attempt to fill the replay table.
const MAX_JTI_LENGTH = 256;

export interface IdentityVerifierOptions {
  /** The configured allow-list (`issuers` in the YAML file). */
  readonly issuers: readonly IssuerConfig[];
  readonly clock: Clock;
  /** Where used `jti`s are remembered (PostgresReplayStore: shared by every replica). */
  readonly replay: ReplayStore;
  /** `<broker URL>/dev/oidc` in `latchkey dev`; without it an issuer with `preset: dev` is a config error. */
  readonly devIssuerUrl?: string;
  /** Abort a discovery or JWKS request after this long (default 5000 ms). */
  readonly fetchTimeoutMs?: number;
  /** Largest discovery document or JWKS accepted (default 256 KiB). */
  readonly maxResponseBytes?: number;
  /** At most one JWKS request per issuer per this interval (default 10 s); bounds refreshes on unknown `kid`. */
  readonly keyRefreshCooldownMs?: number;
  /** Cached keys older than this are refreshed in the background (default 10 min). */
  readonly keyMaxAgeMs?: number;
  /** After a failed discovery, ask again no sooner than this (default 10 s). */
  readonly discoveryRetryMs?: number;
}

/** An IdentityVerifier that can also say, per issuer, whether its keys are loaded and why not. */
export interface IssuerAwareVerifier extends IdentityVerifier {
  issuerStatus(): IssuerKeyStatus[];
}

interface TrustedIssuer {
  readonly config: ResolvedIssuer;
  readonly keys: IssuerKeys;
}

/**
 * Builds the verifier for the configured issuers. Nothing is fetched here:
 * discovery and key sets load on first use (or on `ready()`), so the broker
 * starts while an issuer is unreachable. Configuration mistakes (a dev issuer
 * outside dev mode, plain http, one `iss` twice) throw `ConfigError` at once.
 *
 * `verify` follows octo-sts: size cap, the unverified `iss` only to pick an
 * allowed issuer, then jose checks signature and claims against that issuer's
 * keys, then the `jti` is burnt when asked. Every refusal is a `TokenRejected`
 * subclass whose message names the failed check and never contains the token.
 */
export function createIdentityVerifier(options: IdentityVerifierOptions): IssuerAwareVerifier {
  const { clock, replay } = options;
  const keyOptions = {
    clock,
    fetchTimeoutMs: options.fetchTimeoutMs ?? 5000,
    maxResponseBytes: options.maxResponseBytes ?? 256 * 1024,
    keyRefreshCooldownMs: options.keyRefreshCooldownMs ?? 10_000,
    keyMaxAgeMs: options.keyMaxAgeMs ?? 10 * 60_000,
    discoveryRetryMs: options.discoveryRetryMs ?? 10_000,
  };
  const trusted = new Map<string, TrustedIssuer>();
  for (const config of resolveIssuers(options.issuers, options.devIssuerUrl)) {
    trusted.set(config.issuer, { config, keys: new IssuerKeys(config, keyOptions) });
  }

  async function verify(token: string, verifyOptions: VerifyOptions): Promise<VerifiedIdentity> {
    checkSize(token);
    const unverified = readUnverified(token);
    refuseAccessTokens(unverified.header);
    const issuer = pickIssuer(unverified.payload.iss, trusted);
    const { config } = issuer;
    const now = clock.now();

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, issuer.keys.resolveKey, {
        algorithms: [...ACCEPTED_ALGORITHMS],
        issuer: config.issuer,
        audience: config.audience,
        requiredClaims: ['exp'],
        clockTolerance: config.leewaySeconds,
        maxTokenAge: config.maxTokenAgeSeconds,
        currentDate: now,
      }));
    } catch (err) {
      throw refusal(err, config, now, unverified.header);
    }

    const exp = payload.exp as number; // required above, and jose checked it is a number
    const subjectValue = payload[config.subjectClaim];
    if (typeof subjectValue !== 'string' || subjectValue === '') {
      throw new TokenClaimInvalid(`the token has no ${config.subjectClaim} claim (a non-empty string) to name the caller`, {
        issuer: config.name,
        claim: config.subjectClaim,
      });
    }

    if (verifyOptions.consume && config.singleUseJti) {
      const jti = payload.jti;
      if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH) {
        throw new TokenClaimInvalid(`issuer "${config.name}" requires single-use tokens, but the token has no jti claim (a string of at most ${MAX_JTI_LENGTH} characters)`, {
          issuer: config.name,
          claim: 'jti',
        });
      }
      // The token stays acceptable for `leeway` after exp, so the jti must be remembered as long.
      const rememberUntil = new Date((exp + config.leewaySeconds) * 1000);
      if (!(await replay.claim(config.issuer, jti, rememberUntil))) {
        throw new TokenReplayed(`the token's jti was already used; issuer "${config.name}" tokens are single-use`, { issuer: config.name });
      }
    }

    return {
      issuerName: config.name,
      issuer: config.issuer,
      subject: subjectValue,
      claims: Object.freeze({ ...payload }),
      tokenHash: createHash('sha256').update(token).digest('hex'),
      expiresAt: new Date(exp * 1000),
    };
  }

  async function ready(): Promise<boolean> {
    const loaded = await Promise.all(
      [...trusted.values()].map(({ keys }) =>
        keys.load().then(
          () => true,
          () => false,
        ),
      ),
    );
    return loaded.every(Boolean);
  }

  return {
    verify,
    ready,
    issuerStatus: () => [...trusted.values()].map(({ keys }) => keys.status()),
  };
}

function checkSize(token: string): void {
  if (typeof token !== 'string') throw new TypeError('token must be a string');
  if (token === '') throw new TokenMissing('no token was presented');
  // length counts UTF-16 units, never more than the UTF-8 bytes: cheap first, exact second.
  if (token.length > MAX_TOKEN_BYTES || Buffer.byteLength(token) > MAX_TOKEN_BYTES) {
    throw new TokenTooLarge(`the token is larger than ${MAX_TOKEN_BYTES} bytes`, { limit: MAX_TOKEN_BYTES });
  }
}

/** Decodes header and payload without trusting them, only to refuse early, pick the issuer and word refusals. */
function readUnverified(token: string): { header: ProtectedHeaderParameters; payload: JWTPayload } {
  const parts = token.split('.').length;
  if (parts === 5) {
    throw new TokenMalformed('the token is encrypted (a JWE); latchkey accepts only signed JWTs (JWS)');
  }
  if (parts !== 3) {
    throw new TokenMalformed(`the token is not a JWT: expected 3 dot-separated parts, found ${parts}`);
  }
  let header: ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    throw new TokenMalformed('the token header is not base64url-encoded JSON');
  }
  try {
    return { header, payload: decodeJwt(token) };
  } catch {
    throw new TokenMalformed('the token payload is not a base64url-encoded JSON object');
  }
}

/**
 * An OAuth access token (RFC 9068, `typ: at+jwt`) from a trusted issuer is
 * meant for an API, not as proof of who the caller is: the broker takes ID
 * tokens only, so one API's token cannot be replayed here as an identity.
 */
function refuseAccessTokens(header: ProtectedHeaderParameters): void {
  const typ = typeof header.typ === 'string' ? header.typ.toLowerCase() : '';
  if (typ === 'at+jwt' || typ === 'application/at+jwt') {
    throw new TokenClaimInvalid('the token is an OAuth access token (typ at+jwt); latchkey accepts OIDC ID tokens only');
  }
}

function pickIssuer(iss: unknown, trusted: ReadonlyMap<string, TrustedIssuer>): TrustedIssuer {
  if (typeof iss !== 'string' || iss === '') {
    throw new TokenUnknownIssuer('the token has no iss claim');
  }
  const issuer = trusted.get(iss);
  if (!issuer) {
    throw new TokenUnknownIssuer(`issuer ${quote(iss)} is not trusted`, { iss: iss.slice(0, 200) });
  }
  return issuer;
}

/** Maps what jose raised to latchkey's typed refusals; messages say which check failed and with what values. */
function refusal(err: unknown, issuer: ResolvedIssuer, now: Date, header: ProtectedHeaderParameters): LatchkeyError {
  if (err instanceof LatchkeyError) return err; // from the key resolver: unknown kid, issuer unavailable
  const detail = { issuer: issuer.name };
  const nowText = `now ${now.toISOString()}, leeway ${issuer.leewaySeconds}s`;

  if (err instanceof joseErrors.JWTExpired || err instanceof joseErrors.JWTClaimValidationFailed) {
    const payload = err.payload;
    const { claim, reason } = err;
    if (reason === 'missing') {
      return new TokenClaimInvalid(`the token has no ${claim} claim`, { ...detail, claim });
    }
    if (reason === 'invalid') {
      return new TokenClaimInvalid(`the token's ${claim} claim is not a number`, { ...detail, claim });
    }
    switch (claim) {
      case 'exp':
        return new TokenExpired(`the token expired at ${isoTime(payload.exp)} (${nowText})`, { ...detail, expiredAt: isoTime(payload.exp) });
      case 'nbf':
        return new TokenNotYetValid(`the token is not valid before ${isoTime(payload.nbf)} (${nowText})`, { ...detail, notBefore: isoTime(payload.nbf) });
      case 'iat':
        if (err instanceof joseErrors.JWTExpired) {
          return new TokenTooOld(
            `the token was issued at ${isoTime(payload.iat)}, more than ${issuer.maxTokenAgeSeconds}s ago (${nowText})`,
            { ...detail, issuedAt: isoTime(payload.iat), maxTokenAge: issuer.maxTokenAgeSeconds },
          );
        }
        return new TokenNotYetValid(`the token claims to be issued in the future, at ${isoTime(payload.iat)} (${nowText})`, {
          ...detail,
          issuedAt: isoTime(payload.iat),
        });
      case 'aud':
        return new TokenAudienceMismatch(`audience was ${describeAudience(payload.aud)} not ${quote(issuer.audience)}`, {
          ...detail,
          expected: issuer.audience,
        });
      case 'iss':
        return new TokenUnknownIssuer(`issuer ${quote(String(payload.iss))} is not trusted`, detail);
      default:
        return new TokenClaimInvalid(`the token's ${claim} claim failed its check`, { ...detail, claim });
    }
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) {
    const alg = quote(String(header.alg));
    return new TokenAlgorithmRejected(`the token's algorithm ${alg} is not accepted; accepted: ${ACCEPTED_ALGORITHMS.join(', ')}`, { ...detail, alg: String(header.alg).slice(0, 20) });
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new TokenSignatureInvalid(`the token's signature does not verify with issuer "${issuer.name}"'s key`, detail);
  }
  // Not-supported here means an unknown `crit` extension: the allow-list already settled the algorithm.
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid || err instanceof joseErrors.JOSENotSupported) {
    return new TokenMalformed(`the token is not a valid signed JWT: ${err.message}`, detail);
  }
  if (err instanceof joseErrors.JOSEError) {
    return new TokenSignatureInvalid(`the token could not be verified with issuer "${issuer.name}"'s keys (${err.code})`, detail);
  }
  throw err; // anything else is a bug in latchkey, not the caller's fault
}

function isoTime(seconds: unknown): string {
  return typeof seconds === 'number' && Number.isFinite(seconds) ? new Date(seconds * 1000).toISOString() : String(seconds);
}

function describeAudience(aud: unknown): string {
  const values = Array.isArray(aud) ? aud : [aud];
  return `[${values.slice(0, 10).map((value) => quote(String(value))).join(', ')}]`;
}

// Claims are the caller's text: quote them and keep them short in messages.
function quote(value: string): string {
  return JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}…` : value);
}
