/**
 * A real OpenID Connect issuer for tests: an HTTP server on 127.0.0.1 that
 * serves a discovery document and a JWKS, counts how often each is fetched,
 * and signs tokens shaped like the ones latchkey meets in the wild — GitHub
 * Actions workflow tokens and an SSO identity provider's ID tokens — plus the
 * forged ones an attacker would try.
 *
 * ```ts
 * const idp = await TestOidcIssuer.start({ clock });
 * const verifier = createIdentityVerifier({ issuers: [idp.issuerConfig()], clock, replay });
 * const token = await idp.githubToken({ environment: 'prod' });
 * await idp.close();
 * ```
 *
 * With `{ interactive: true }` it is also an SSO identity provider for a
 * browser sign-in (`latchkey login`): an auto-approving authorization
 * endpoint (`nextSignIn(claims)` says who signs in), a token endpoint that
 * checks PKCE S256 and rotates refresh tokens, and a revocation endpoint.
 */
import { constants, createHash, createPublicKey, KeyObject, randomBytes, randomUUID, sign as nodeSign } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { base64url, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { epochSeconds, systemClock, type Clock } from '../../src/clock.js';
import type { IssuerConfig } from '../../src/config/schema.js';

/** The asymmetric algorithms latchkey accepts; the test issuer publishes one key for each by default. */
export type SigningAlgorithm = 'RS256' | 'PS256' | 'ES256' | 'EdDSA';
export const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = ['RS256', 'PS256', 'ES256', 'EdDSA'];

/** A key pair with its public JWK (what the JWKS publishes). */
export interface TestSigningKey {
  readonly alg: SigningAlgorithm;
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly publicJwk: JWK;
}

/** Generates a fresh key pair for `alg`; `kid` defaults to a random one. */
export async function createSigningKey(alg: SigningAlgorithm, kid = `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`): Promise<TestSigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicKey, publicJwk };
}

export type Claims = Record<string, unknown>;

/**
 * Claim overrides: a value replaces the default, `undefined` removes the claim
 * (`{ jti: undefined }` gives a token without a jti).
 */
export type ClaimOverrides = Record<string, unknown>;

export interface SignOptions {
  /** Which of the issuer's keys signs (default RS256). */
  readonly alg?: SigningAlgorithm;
  /** `kid` header; default the signing key's; `null` leaves it out. */
  readonly kid?: string | null;
  /** Extra protected-header parameters (`jku`, `x5u`, `jwk`, `typ`, ...). */
  readonly header?: Record<string, unknown>;
  /** Sign with this key instead of the issuer's (its `alg` must match). */
  readonly key?: CryptoKey | KeyObject;
}

export interface GitHubTokenOptions extends SignOptions {
  /**
   * `name`: `repo:OWNER/REPO:...` (the classic default); `immutable`:
   * `repo:OWNER@OWNER_ID/REPO@REPO_ID:...` (owners that opted into immutable
   * subject claims). Ignored when the overrides set `sub`.
   */
  readonly subjectFormat?: 'name' | 'immutable';
}

/** What a canned HTTP answer looks like; `'hang'` accepts the request and never answers. */
export type CannedResponse = { readonly status?: number; readonly body: string | Buffer; readonly headers?: Record<string, string> } | 'hang';

export interface TestOidcIssuerOptions {
  /** Algorithms to publish a key for (default all four). */
  readonly algorithms?: readonly SigningAlgorithm[];
  /** Path of the issuer under the server (default none: `http://127.0.0.1:PORT`). */
  readonly path?: string;
  /** Time for iat/nbf/exp (default the system clock); share the verifier's ManualClock. */
  readonly clock?: Clock;
  /** `aud` of the tokens (default `latchkey`). */
  readonly audience?: string;
  /** `issuer` published in the discovery document (default the real URL): to test a lying document. */
  readonly advertisedIssuer?: string;
  /**
   * Also act as an SSO identity provider for a browser sign-in: serve and
   * advertise `authorization_endpoint` (auto-approving, as if the user signed
   * in), `token_endpoint` (authorization code with PKCE S256, refresh token)
   * and `revocation_endpoint`. Off by default, so the discovery document of
   * other tests stays as it was.
   */
  readonly interactive?: boolean;
}

/** Who signs in at the next authorization request, and how the IdP treats that session. */
export interface SignInOptions {
  /** Issue a refresh token (default true). */
  readonly refreshToken?: boolean;
  /** Include a new ID token in refresh answers (default true); false acts like IdPs that return only an access token. */
  readonly idTokenOnRefresh?: boolean;
}

/** What the interactive endpoints saw: the evidence for "refreshed", "revoked", "refused". */
export interface InteractiveRequests {
  authorize: number;
  codeExchanges: number;
  refreshes: number;
  revocations: number;
  /** Token requests answered with an OAuth error, by `error_description`. */
  refused: string[];
  /** Tokens posted to the revocation endpoint. */
  revoked: string[];
  /** The `jti` of every ID token the token endpoint issued, in order. */
  idTokenJtis: string[];
  /** The query of the last authorization request. */
  lastAuthorization?: URLSearchParams;
}

interface PendingCode {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly codeChallenge: string;
  readonly nonce: string | undefined;
  readonly scope: string;
  readonly claims: ClaimOverrides;
  readonly options: SignInOptions;
}

interface RefreshSession {
  readonly clientId: string;
  readonly scope: string;
  readonly claims: ClaimOverrides;
  readonly options: SignInOptions;
  expired: boolean;
}

/** A local OIDC issuer over real HTTP. Start with `TestOidcIssuer.start()`, stop with `close()`. */
export class TestOidcIssuer {
  /** The issuer identifier, exactly as in `iss`. */
  readonly url: string;
  readonly discoveryUrl: string;
  readonly jwksUrl: string;
  /** Requests served so far, by document: the evidence for "no fetch storm". */
  readonly requests = { discovery: 0, jwks: 0, other: 0 };
  readonly audience: string;
  readonly clock: Clock;
  /** The keys the JWKS publishes, in order. */
  readonly keys: TestSigningKey[];

  readonly #server: http.Server;
  readonly #advertisedIssuer: string;
  #jwksResponse: CannedResponse | undefined;
  #discoveryResponse: CannedResponse | undefined;
  readonly #interactive: boolean;
  /** Counts and records of the interactive endpoints (all zero unless `interactive`). */
  readonly interactiveRequests: InteractiveRequests = { authorize: 0, codeExchanges: 0, refreshes: 0, revocations: 0, refused: [], revoked: [], idTokenJtis: [] };
  #nextSignIn: { claims: ClaimOverrides; options: SignInOptions } = { claims: {}, options: {} };
  readonly #codes = new Map<string, PendingCode>();
  readonly #refreshTokens = new Map<string, RefreshSession>();

  private constructor(server: http.Server, url: string, keys: TestSigningKey[], options: TestOidcIssuerOptions) {
    this.#server = server;
    this.url = url;
    this.discoveryUrl = `${url}/.well-known/openid-configuration`;
    this.jwksUrl = `${url}/jwks`;
    this.keys = keys;
    this.audience = options.audience ?? 'latchkey';
    this.clock = options.clock ?? systemClock;
    this.#advertisedIssuer = options.advertisedIssuer ?? url;
    this.#interactive = options.interactive ?? false;
  }

  /** Starts the issuer on 127.0.0.1 on a free port. */
  static async start(options: TestOidcIssuerOptions = {}): Promise<TestOidcIssuer> {
    const keys = await Promise.all((options.algorithms ?? SIGNING_ALGORITHMS).map((alg) => createSigningKey(alg)));
    let issuer!: TestOidcIssuer;
    const server = http.createServer((req, res) => issuer.#handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const path = (options.path ?? '').replace(/\/$/, '');
    issuer = new TestOidcIssuer(server, `http://127.0.0.1:${port}${path}`, keys, options);
    return issuer;
  }

  /** Stops the server, cutting hanging requests. */
  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** The issuer's key for `alg` (the first one, if several were added). */
  key(alg: SigningAlgorithm = 'RS256'): TestSigningKey {
    const key = this.keys.find((k) => k.alg === alg);
    if (!key) throw new Error(`test issuer has no ${alg} key`);
    return key;
  }

  /** Publishes one more key (a rotation); tokens signed with it carry its kid. */
  async addKey(alg: SigningAlgorithm, kid?: string): Promise<TestSigningKey> {
    const key = await createSigningKey(alg, kid);
    this.keys.push(key);
    return key;
  }

  /** Answer JWKS requests with `response` instead of the keys (`undefined` restores them). Still counted. */
  respondToJwks(response: CannedResponse | undefined): void {
    this.#jwksResponse = response;
  }

  /**
   * Interactive mode: the claims (over `ssoClaims`) of whoever "signs in" at the
   * next authorization request, e.g. `{ email: 'bob@example.com', groups: [] }`.
   * Stays in effect for later sign-ins until called again.
   */
  nextSignIn(claims: ClaimOverrides = {}, options: SignInOptions = {}): void {
    this.#nextSignIn = { claims, options };
  }

  /** Interactive mode: every refresh token issued so far is refused from now on, as after the IdP's session lifetime. */
  expireRefreshTokens(): void {
    for (const session of this.#refreshTokens.values()) session.expired = true;
  }

  /** Interactive mode: refresh tokens the IdP still honours. */
  get liveRefreshTokens(): number {
    return [...this.#refreshTokens.values()].filter((s) => !s.expired).length;
  }

  /** Answer discovery requests with `response` instead of the document (`undefined` restores it). Still counted. */
  respondToDiscovery(response: CannedResponse | undefined): void {
    this.#discoveryResponse = response;
  }

  /**
   * An `issuers[]` entry for this issuer, as the config loader would produce it
   * (plain http allowed, since it is on loopback). Override anything, e.g.
   * `{ preset: 'github' }` to treat it as a GitHub Enterprise Server.
   */
  issuerConfig(overrides: Partial<IssuerConfig> = {}): IssuerConfig {
    return {
      name: 'test',
      issuer: this.url,
      audience: this.audience,
      max_token_age: 3600,
      leeway: 30,
      subject_claim: 'sub',
      single_use_jti: true,
      allow_insecure_http: true,
      ...overrides,
    };
  }

  /** iss, aud, sub, iat, nbf, exp (+10 min), jti: the registered claims every test token starts from. */
  baseClaims(): Claims {
    const now = epochSeconds(this.clock.now());
    return { iss: this.url, aud: this.audience, sub: 'test-subject', iat: now, nbf: now, exp: now + 600, jti: randomUUID() };
  }

  /** Signs exactly `claims` (nothing added) with the issuer's key for `options.alg`. */
  async sign(claims: Claims, options: SignOptions = {}): Promise<string> {
    const alg = options.alg ?? 'RS256';
    const own = this.keys.find((k) => k.alg === alg);
    const key = options.key ?? own?.privateKey;
    if (!key) throw new Error(`test issuer has no ${alg} key; pass options.key`);
    const kid = options.kid === undefined ? own?.kid : options.kid;
    const header: Record<string, unknown> = { alg, typ: 'JWT', ...options.header };
    if (kid !== null && kid !== undefined) header.kid = kid;
    return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key);
  }

  /** Signs base claims with `overrides` applied: the quickest valid token. */
  async token(overrides: ClaimOverrides = {}, options: SignOptions = {}): Promise<string> {
    return this.sign(applyOverrides(this.baseClaims(), overrides), options);
  }

  /**
   * The claims of a GitHub Actions workflow token, as GitHub documents them
   * (IDs as strings, nbf 10 minutes before iat, exp 5 minutes after), for
   * `octo-org/octo-repo` deploying to environment `prod` from `main`. The
   * `sub` follows the claims: `:environment:ENV` when there is an environment,
   * `:pull_request` for pull_request events, `:ref:REF` otherwise.
   */
  githubClaims(overrides: ClaimOverrides = {}, options: Pick<GitHubTokenOptions, 'subjectFormat'> = {}): Claims {
    const now = epochSeconds(this.clock.now());
    const claims = applyOverrides(
      {
        jti: randomUUID(),
        aud: this.audience,
        ref: 'refs/heads/main',
        sha: 'c4f2f1a7b9b0e3e5d1c2a3b4c5d6e7f8a9b0c1d2',
        repository: 'octo-org/octo-repo',
        repository_owner: 'octo-org',
        repository_owner_id: '65',
        run_id: '5029493852',
        run_number: '10',
        run_attempt: '1',
        repository_visibility: 'private',
        repository_id: '74',
        actor_id: '12',
        actor: 'octocat',
        workflow: 'deploy',
        head_ref: '',
        base_ref: '',
        event_name: 'push',
        ref_protected: 'true',
        ref_type: 'branch',
        workflow_ref: 'octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main',
        workflow_sha: 'c4f2f1a7b9b0e3e5d1c2a3b4c5d6e7f8a9b0c1d2',
        job_workflow_ref: 'octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main',
        job_workflow_sha: 'c4f2f1a7b9b0e3e5d1c2a3b4c5d6e7f8a9b0c1d2',
        runner_environment: 'github-hosted',
        environment: 'prod',
        check_run_id: '13549001024',
        iss: this.url,
        nbf: now - 600,
        exp: now + 300,
        iat: now,
      },
      overrides,
    );
    if (!Object.hasOwn(overrides, 'sub')) claims.sub = githubSubject(claims, options.subjectFormat ?? 'name');
    return claims;
  }

  /** A signed GitHub Actions workflow token (header like GitHub's: RS256, typ JWT, x5t, kid). */
  async githubToken(overrides: ClaimOverrides = {}, options: GitHubTokenOptions = {}): Promise<string> {
    const header = { x5t: base64url.encode(randomUUID()), ...options.header };
    return this.sign(this.githubClaims(overrides, options), { ...options, header });
  }

  /**
   * The claims of an SSO identity provider's ID token for an engineer: email,
   * name, `groups` ["engineering", "auditors"], `amr` ["pwd", "hwk"] (a
   * hardware key: phishing-resistant), auth_time, one-hour lifetime.
   */
  ssoClaims(overrides: ClaimOverrides = {}): Claims {
    const now = epochSeconds(this.clock.now());
    return applyOverrides(
      {
        iss: this.url,
        sub: '00u8f2k1m3ZpQ4xY5d7',
        aud: this.audience,
        iat: now,
        exp: now + 3600,
        jti: `ID.${randomUUID()}`,
        auth_time: now - 30,
        amr: ['pwd', 'hwk'],
        email: 'ada@example.com',
        email_verified: true,
        name: 'Ada Lovelace',
        preferred_username: 'ada@example.com',
        groups: ['engineering', 'auditors'],
        idp: 'corp-sso',
      },
      overrides,
    );
  }

  /** A signed SSO ID token (see `ssoClaims`); signed ES256 unless `options.alg` says otherwise. */
  async ssoToken(overrides: ClaimOverrides = {}, options: SignOptions = {}): Promise<string> {
    return this.sign(this.ssoClaims(overrides), { alg: 'ES256', ...options });
  }

  // ---- forged tokens ---------------------------------------------------------

  /** ATTACK: `alg: none` with an empty signature. */
  unsignedToken(claims: Claims): string {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    return `${header}.${base64url.encode(JSON.stringify(claims))}.`;
  }

  /**
   * ATTACK: HS256 keyed with the issuer's RSA public key (PEM), the classic
   * algorithm confusion: a verifier that lets the token pick the algorithm
   * would check the HMAC with the public key and accept it.
   */
  async hs256WithPublicKey(claims: Claims, alg: SigningAlgorithm = 'RS256'): Promise<string> {
    const key = this.key(alg);
    const pem = createPublicKey({ key: key.publicJwk as import('node:crypto').JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: key.kid }).sign(new TextEncoder().encode(pem.toString()));
  }

  /**
   * ATTACK: signed with a key the issuer never published. `kid: 'issuer'`
   * (default) reuses the issuer's kid for that alg, so the key is found and the
   * signature fails; `kid: 'own'` uses the forged key's own unknown kid.
   */
  async signWithForeignKey(claims: Claims, options: { alg?: SigningAlgorithm; kid?: 'issuer' | 'own'; header?: Record<string, unknown> } = {}): Promise<string> {
    const alg = options.alg ?? 'RS256';
    const forged = await createSigningKey(alg);
    const kid = options.kid === 'own' ? forged.kid : this.key(alg).kid;
    return this.sign(claims, { alg, kid, key: forged.privateKey, ...(options.header ? { header: options.header } : {}) });
  }

  /**
   * ATTACK: signs exactly this header and payload with the issuer's key for
   * `alg`, bypassing jose's checks — for headers jose refuses to produce
   * (`crit` with unknown extensions, `b64: false`). A string payload is used
   * as the payload segment as it is; an object is JSON- and base64url-encoded.
   */
  signRaw(header: Record<string, unknown>, payload: Claims | string, alg: SigningAlgorithm = 'ES256'): string {
    const key = KeyObject.from(this.key(alg).privateKey);
    const segment = typeof payload === 'string' ? payload : Buffer.from(JSON.stringify(payload)).toString('base64url');
    const input = Buffer.from(`${Buffer.from(JSON.stringify(header)).toString('base64url')}.${segment}`);
    const signature =
      alg === 'EdDSA'
        ? nodeSign(null, input, key)
        : alg === 'ES256'
          ? nodeSign('sha256', input, { key, dsaEncoding: 'ieee-p1363' })
          : alg === 'PS256'
            ? nodeSign('sha256', input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
            : nodeSign('sha256', input, key);
    return `${input.toString()}.${signature.toString('base64url')}`;
  }

  // ---- interactive sign-in (RFC 6749 + RFC 7636 + RFC 7009) ---------------

  /** Auto-approves: redirects back with a code, as if the user signed in. Errors go back as RFC 6749 redirects. */
  #authorize(query: URLSearchParams, res: http.ServerResponse): void {
    this.interactiveRequests.authorize += 1;
    this.interactiveRequests.lastAuthorization = new URLSearchParams(query);
    const redirectUri = query.get('redirect_uri') ?? '';
    let redirect: URL;
    try {
      redirect = new URL(redirectUri);
    } catch {
      return respond(res, { status: 400, body: '{"error":"invalid_request","error_description":"redirect_uri is not a URL"}' });
    }
    // Loopback redirects only (RFC 8252 section 7.3): any port, http, 127.0.0.1.
    if (redirect.protocol !== 'http:' || redirect.hostname !== '127.0.0.1') {
      return respond(res, { status: 400, body: '{"error":"invalid_request","error_description":"redirect_uri must be a loopback http://127.0.0.1 URL"}' });
    }
    const back = (params: Record<string, string>) => {
      const state = query.get('state');
      for (const [k, v] of Object.entries({ ...params, ...(state === null ? {} : { state }) })) redirect.searchParams.set(k, v);
      res.writeHead(302, { location: redirect.href });
      res.end();
    };
    const clientId = query.get('client_id');
    if (!clientId) return back({ error: 'invalid_request', error_description: 'client_id is required' });
    if (query.get('response_type') !== 'code') return back({ error: 'unsupported_response_type', error_description: 'only response_type=code' });
    const codeChallenge = query.get('code_challenge');
    if (!codeChallenge || query.get('code_challenge_method') !== 'S256') {
      return back({ error: 'invalid_request', error_description: 'PKCE with code_challenge_method=S256 is required' });
    }
    const scope = query.get('scope') ?? '';
    if (!scope.split(' ').includes('openid')) return back({ error: 'invalid_scope', error_description: 'openid scope is required' });
    const code = randomBytes(24).toString('base64url');
    this.#codes.set(code, {
      clientId,
      redirectUri,
      codeChallenge,
      nonce: query.get('nonce') ?? undefined,
      scope,
      claims: this.#nextSignIn.claims,
      options: this.#nextSignIn.options,
    });
    back({ code });
  }

  async #token(form: URLSearchParams, res: http.ServerResponse): Promise<void> {
    const refuse = (error: string, description: string, status = 400) => {
      this.interactiveRequests.refused.push(description);
      respond(res, { status, body: JSON.stringify({ error, error_description: description }) });
    };
    const clientId = form.get('client_id');
    if (!clientId) return refuse('invalid_client', 'client_id is required (public client)', 401);
    switch (form.get('grant_type')) {
      case 'authorization_code': {
        this.interactiveRequests.codeExchanges += 1;
        const code = form.get('code') ?? '';
        const pending = this.#codes.get(code);
        this.#codes.delete(code); // one use, even when refused
        if (!pending) return refuse('invalid_grant', 'unknown or used authorization code');
        if (pending.clientId !== clientId) return refuse('invalid_grant', 'the code was issued to another client');
        if (pending.redirectUri !== form.get('redirect_uri')) return refuse('invalid_grant', 'redirect_uri differs from the authorization request');
        const verifier = form.get('code_verifier') ?? '';
        if (createHash('sha256').update(verifier).digest('base64url') !== pending.codeChallenge) {
          return refuse('invalid_grant', 'PKCE verification failed: code_verifier does not match code_challenge');
        }
        const idToken = await this.#signInIdToken(clientId, pending.claims, pending.nonce === undefined ? {} : { nonce: pending.nonce });
        return respond(res, { body: JSON.stringify(this.#tokenAnswer(clientId, pending.scope, pending.claims, pending.options, idToken)) });
      }
      case 'refresh_token': {
        this.interactiveRequests.refreshes += 1;
        const token = form.get('refresh_token') ?? '';
        const session = this.#refreshTokens.get(token);
        if (!session || session.clientId !== clientId) return refuse('invalid_grant', 'unknown refresh token');
        if (session.expired) return refuse('invalid_grant', 'refresh token expired');
        this.#refreshTokens.delete(token); // rotation: a refresh token is good for one refresh
        const idToken = session.options.idTokenOnRefresh === false ? undefined : await this.#signInIdToken(clientId, session.claims, {});
        return respond(res, { body: JSON.stringify(this.#tokenAnswer(clientId, session.scope, session.claims, session.options, idToken)) });
      }
      default:
        return refuse('unsupported_grant_type', `grant_type ${String(form.get('grant_type'))} is not supported`);
    }
  }

  #revoke(form: URLSearchParams, res: http.ServerResponse): void {
    this.interactiveRequests.revocations += 1;
    const token = form.get('token') ?? '';
    this.interactiveRequests.revoked.push(token);
    this.#refreshTokens.delete(token);
    // RFC 7009: 200 whether or not the token was known.
    respond(res, { body: '' });
  }

  async #signInIdToken(clientId: string, overrides: ClaimOverrides, extra: Claims): Promise<string> {
    const claims = this.ssoClaims({ aud: clientId, azp: clientId, ...overrides, jti: `ID.${randomUUID()}`, ...extra });
    this.interactiveRequests.idTokenJtis.push(String(claims.jti));
    return this.sign(claims, { alg: 'ES256' });
  }

  #tokenAnswer(clientId: string, scope: string, claims: ClaimOverrides, options: SignInOptions, idToken: string | undefined): Record<string, unknown> {
    const answer: Record<string, unknown> = { access_token: randomBytes(24).toString('base64url'), token_type: 'Bearer', expires_in: 3600, scope };
    if (idToken) answer.id_token = idToken;
    if (options.refreshToken !== false) {
      const refreshToken = randomBytes(32).toString('base64url');
      this.#refreshTokens.set(refreshToken, { clientId, scope, claims, options, expired: false });
      answer.refresh_token = refreshToken;
    }
    return answer;
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = new URL(req.url ?? '/', this.url).pathname;
    if (path === new URL(this.discoveryUrl).pathname) {
      this.requests.discovery += 1;
      const document = {
        issuer: this.#advertisedIssuer,
        jwks_uri: this.jwksUrl,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public', 'pairwise'],
        id_token_signing_alg_values_supported: [...new Set(this.keys.map((k) => k.alg))],
        claims_supported: ['sub', 'aud', 'exp', 'iat', 'iss', 'jti', 'nbf', 'ref', 'repository', 'repository_id', 'environment'],
        scopes_supported: ['openid'],
        ...(this.#interactive
          ? {
              response_types_supported: ['code', 'id_token'],
              scopes_supported: ['openid', 'email', 'profile', 'groups', 'offline_access'],
              authorization_endpoint: `${this.url}/authorize`,
              token_endpoint: `${this.url}/token`,
              revocation_endpoint: `${this.url}/revoke`,
              grant_types_supported: ['authorization_code', 'refresh_token'],
              code_challenge_methods_supported: ['S256'],
              token_endpoint_auth_methods_supported: ['none'],
              revocation_endpoint_auth_methods_supported: ['none'],
            }
          : {}),
      };
      return respond(res, this.#discoveryResponse ?? { body: JSON.stringify(document) });
    }
    if (this.#interactive && req.method === 'GET' && path === new URL(`${this.url}/authorize`).pathname) {
      return this.#authorize(new URL(req.url ?? '/', this.url).searchParams, res);
    }
    if (this.#interactive && req.method === 'POST' && path === new URL(`${this.url}/token`).pathname) {
      return void readForm(req).then((form) => this.#token(form, res), () => respond(res, { status: 400, body: '{"error":"invalid_request"}' }));
    }
    if (this.#interactive && req.method === 'POST' && path === new URL(`${this.url}/revoke`).pathname) {
      return void readForm(req).then((form) => this.#revoke(form, res), () => respond(res, { status: 400, body: '{"error":"invalid_request"}' }));
    }
    if (path === new URL(this.jwksUrl).pathname) {
      this.requests.jwks += 1;
      return respond(res, this.#jwksResponse ?? { body: JSON.stringify({ keys: this.keys.map((k) => k.publicJwk) }) });
    }
    this.requests.other += 1;
    respond(res, { status: 404, body: '{"error":"not_found"}' });
  }
}

function respond(res: http.ServerResponse, response: CannedResponse): void {
  if (response === 'hang') return; // leave the request open; close() cuts it
  res.writeHead(response.status ?? 200, { 'content-type': 'application/json', ...response.headers });
  res.end(response.body);
}

/** Reads an application/x-www-form-urlencoded body (at most 64 KiB). */
function readForm(req: http.IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > 65536) reject(new Error('body too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

function applyOverrides(claims: Claims, overrides: ClaimOverrides): Claims {
  const result: Claims = { ...claims };
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete result[name];
    else result[name] = value;
  }
  return result;
}

/** GitHub's default subject template, in either format. */
function githubSubject(claims: Claims, format: 'name' | 'immutable'): string {
  const [owner, name] = String(claims.repository).split('/');
  const repo = format === 'immutable' ? `${owner}@${String(claims.repository_owner_id)}/${name}@${String(claims.repository_id)}` : `${owner}/${name}`;
  if (typeof claims.environment === 'string' && claims.environment !== '') return `repo:${repo}:environment:${claims.environment}`;
  if (claims.event_name === 'pull_request') return `repo:${repo}:pull_request`;
  return `repo:${repo}:ref:${String(claims.ref)}`;
}
