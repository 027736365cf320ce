import { createRemoteJWKSet, customFetch, errors as joseErrors, type JWSHeaderParameters, type FlattenedJWSInput, type CryptoKey } from 'jose';
import * as oidc from 'openid-client';
import type { Clock } from '../clock.js';
import { IssuerUnavailable, LatchkeyError, TokenKeyNotFound } from '../errors.js';
import { boundedFetch, type FetchLike } from './bounded-fetch.js';
import type { ResolvedIssuer } from './issuers.js';

type RemoteKeySet = ReturnType<typeof createRemoteJWKSet>;

export interface IssuerKeysOptions {
  readonly clock: Clock;
  /** Abort a discovery or JWKS request after this long. */
  readonly fetchTimeoutMs: number;
  /** Largest discovery document or JWKS accepted, in bytes. */
  readonly maxResponseBytes: number;
  /** At most one JWKS request per this interval, whatever tokens arrive (unknown `kid`s included). */
  readonly keyRefreshCooldownMs: number;
  /** Keys older than this are refreshed in the background on the next verification. */
  readonly keyMaxAgeMs: number;
  /** After a failed discovery, wait this long before asking again. */
  readonly discoveryRetryMs: number;
  /** The fetch underneath (tests pass the global one; kept injectable for the benchmark). */
  readonly fetch?: typeof fetch;
}

/** What `/readyz` and operators learn about one issuer. */
export interface IssuerKeyStatus {
  readonly name: string;
  readonly issuer: string;
  /** The issuer's key set is loaded: its tokens can be verified. */
  readonly loaded: boolean;
  /** Where the keys come from, once discovery has said. */
  readonly jwksUri: string | undefined;
  /** Why the last discovery or key fetch failed, if it did. */
  readonly lastError: string | undefined;
}

// Raised by the throttled fetch instead of touching the network; never leaves this module.
class KeyFetchThrottled extends Error {}

/**
 * One issuer's signing keys: found through OIDC discovery (openid-client),
 * fetched from its `jwks_uri` with jose's remote key set, cached, refreshed
 * when a token names an unknown `kid` — but never more than once per
 * cooldown, so a stream of made-up `kid`s cannot turn into a stream of
 * requests to the issuer. Discovery is lazy; a failure is remembered with its
 * reason and retried later, so a broker starts even while an issuer is down.
 */
export class IssuerKeys {
  readonly #issuer: ResolvedIssuer;
  readonly #options: IssuerKeysOptions;
  #remote: RemoteKeySet | undefined;
  #jwksUri: string | undefined;
  #discovering: Promise<RemoteKeySet> | undefined;
  #discoveryFailedAt: number | undefined;
  #lastJwksAttemptAt: number | undefined;
  #lastJwksSuccessAt: number | undefined;
  #lastError: string | undefined;

  constructor(issuer: ResolvedIssuer, options: IssuerKeysOptions) {
    this.#issuer = issuer;
    this.#options = options;
  }

  /** The key resolver handed to jose's `jwtVerify`; jose calls it only after the algorithm passed. */
  readonly resolveKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    const remote = await this.#remoteKeySet();
    this.#refreshIfOld(remote);
    try {
      return await remote(header, token);
    } catch (err) {
      throw this.#keyError(err, header, remote);
    }
  };

  /** Whether the key set has been fetched at least once. */
  get loaded(): boolean {
    return this.#remote?.jwks() !== undefined;
  }

  /**
   * Makes sure discovery ran and keys are loaded (for `/readyz` and start-up
   * warm-up). Throws `IssuerUnavailable` with the reason otherwise; respects the
   * retry interval and the key cooldown, so calling it often costs nothing.
   */
  async load(): Promise<void> {
    const remote = await this.#remoteKeySet();
    if (remote.jwks() !== undefined) return;
    try {
      await remote.reload();
    } catch (err) {
      throw this.#keyError(err, {}, remote);
    }
  }

  status(): IssuerKeyStatus {
    return {
      name: this.#issuer.name,
      issuer: this.#issuer.issuer,
      loaded: this.loaded,
      jwksUri: this.#jwksUri,
      lastError: this.#lastError,
    };
  }

  #now(): number {
    return this.#options.clock.now().getTime();
  }

  async #remoteKeySet(): Promise<RemoteKeySet> {
    if (this.#remote) return this.#remote;
    if (this.#discovering) return this.#discovering;
    const failedAt = this.#discoveryFailedAt;
    if (failedAt !== undefined && this.#now() - failedAt < this.#options.discoveryRetryMs) {
      throw new IssuerUnavailable(`issuer "${this.#issuer.name}" is unavailable: ${this.#lastError ?? 'discovery failed'}`, { issuer: this.#issuer.name });
    }
    this.#discovering = this.#discover().then(
      (remote) => {
        this.#remote = remote;
        this.#discovering = undefined;
        this.#lastError = undefined;
        return remote;
      },
      (err: unknown) => {
        this.#discoveryFailedAt = this.#now();
        this.#discovering = undefined;
        const unavailable = asUnavailable(err, `discovery of issuer "${this.#issuer.name}" at ${this.#issuer.discoveryUrl.href} failed`);
        this.#lastError = unavailable.message;
        throw unavailable;
      },
    );
    return this.#discovering;
  }

  async #discover(): Promise<RemoteKeySet> {
    const issuer = this.#issuer;
    const fetchDocument = boundedFetch(
      { timeoutMs: this.#options.fetchTimeoutMs, maxBytes: this.#options.maxResponseBytes, describe: `discovery document of issuer "${issuer.name}"` },
      this.#options.fetch,
    );
    const configuration = await oidc.discovery(issuer.discoveryUrl, 'latchkey', undefined, undefined, {
      execute: issuer.allowInsecureHttp ? [oidc.allowInsecureRequests] : [],
      [oidc.customFetch]: fetchDocument as oidc.CustomFetch,
      timeout: Math.max(1, Math.ceil(this.#options.fetchTimeoutMs / 1000)),
    });
    const metadata = configuration.serverMetadata();
    // openid-client checks `issuer` only when it derives the URL itself; latchkey always checks, exactly.
    if (metadata.issuer !== issuer.issuer) {
      throw new IssuerUnavailable(
        `discovery document at ${issuer.discoveryUrl.href} names issuer ${JSON.stringify(metadata.issuer)}, expected ${JSON.stringify(issuer.issuer)}`,
      );
    }
    if (typeof metadata.jwks_uri !== 'string') {
      throw new IssuerUnavailable(`discovery document at ${issuer.discoveryUrl.href} has no jwks_uri`);
    }
    const jwksUri = new URL(metadata.jwks_uri);
    if (jwksUri.protocol !== 'https:' && !(jwksUri.protocol === 'http:' && issuer.allowInsecureHttp)) {
      throw new IssuerUnavailable(`jwks_uri ${jwksUri.href} of issuer "${issuer.name}" is not https`);
    }
    this.#jwksUri = jwksUri.href;
    return createRemoteJWKSet(jwksUri, {
      timeoutDuration: this.#options.fetchTimeoutMs,
      // Refresh policy lives in #throttledFetch and #refreshIfOld, on the injected clock.
      cooldownDuration: 0,
      cacheMaxAge: Infinity,
      [customFetch]: this.#throttledFetch(),
    });
  }

  #throttledFetch(): FetchLike {
    const fetchKeys = boundedFetch(
      { timeoutMs: this.#options.fetchTimeoutMs, maxBytes: this.#options.maxResponseBytes, describe: `key set of issuer "${this.#issuer.name}"` },
      this.#options.fetch,
    );
    return async (url, init) => {
      const now = this.#now();
      const last = this.#lastJwksAttemptAt;
      if (last !== undefined && now - last < this.#options.keyRefreshCooldownMs) throw new KeyFetchThrottled();
      this.#lastJwksAttemptAt = now;
      const response = await fetchKeys(url, init);
      if (response.status === 200) {
        this.#lastJwksSuccessAt = now;
        this.#lastError = undefined;
      }
      return response;
    };
  }

  #refreshIfOld(remote: RemoteKeySet): void {
    const success = this.#lastJwksSuccessAt;
    if (success === undefined || this.#now() - success < this.#options.keyMaxAgeMs) return;
    // In the background: the cached keys keep working while the issuer answers (or does not).
    remote.reload().catch((err: unknown) => {
      if (!(err instanceof KeyFetchThrottled)) this.#lastError = asUnavailable(err, this.#keySetFailure()).message;
    });
  }

  #keySetFailure(): string {
    return `key set of issuer "${this.#issuer.name}" at ${this.#jwksUri ?? '(unknown)'} could not be loaded`;
  }

  /** Turns what jose or the fetch raised while finding a key into a refusal (401) or an outage (503). */
  #keyError(err: unknown, header: JWSHeaderParameters, remote: RemoteKeySet): LatchkeyError {
    const name = this.#issuer.name;
    if (err instanceof KeyFetchThrottled) {
      if (remote.jwks() !== undefined) return unknownKid(name, header);
      return new IssuerUnavailable(`issuer "${name}" is unavailable: ${this.#lastError ?? 'its key set is not loaded yet'}`, { issuer: name });
    }
    if (err instanceof joseErrors.JWKSNoMatchingKey) return unknownKid(name, header);
    if (err instanceof joseErrors.JWKSMultipleMatchingKeys) {
      return new TokenKeyNotFound(`the token names no kid and issuer "${name}" publishes several ${String(header.alg)} keys`, { issuer: name });
    }
    const unavailable = asUnavailable(err, this.#keySetFailure());
    this.#lastError = unavailable.message;
    return unavailable;
  }
}

function unknownKid(issuer: string, header: JWSHeaderParameters): TokenKeyNotFound {
  if (typeof header.kid !== 'string') {
    const why = header.kid === undefined ? 'the token names no kid' : 'the token\'s kid is not a string';
    return new TokenKeyNotFound(`issuer "${issuer}" has no ${String(header.alg)} key that fits: ${why}`, { issuer });
  }
  const kid = header.kid.slice(0, 100);
  return new TokenKeyNotFound(`issuer "${issuer}" has no signing key with kid ${JSON.stringify(kid)}`, { issuer, kid });
}

function asUnavailable(err: unknown, context: string): IssuerUnavailable {
  if (err instanceof IssuerUnavailable) return err;
  // openid-client wraps what our fetch raised; keep the innermost latchkey message.
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof IssuerUnavailable) return cause;
  if (err instanceof LatchkeyError) return new IssuerUnavailable(`${context}: ${err.message}`, {}, { cause: err });
  if (err instanceof joseErrors.JWKSTimeout) return new IssuerUnavailable(`${context}: timed out`, {}, { cause: err });
  const message = err instanceof Error ? err.message : String(err);
  return new IssuerUnavailable(`${context}: ${message}`, {}, { cause: err });
}
