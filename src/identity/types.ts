/**
 * What the rest of latchkey knows about a caller once its token is verified.
 */
export type Claims = Readonly<Record<string, unknown>>;

export interface VerifiedIdentity {
  /** The configured issuer's name (`issuers[].name`), used by rules. */
  readonly issuerName: string;
  /** The exact `iss` claim. */
  readonly issuer: string;
  /** The `sub` claim (or the issuer's configured subject claim). */
  readonly subject: string;
  /** Every claim of the verified token. Never contains the token itself. */
  readonly claims: Claims;
  /** SHA-256 of the raw token, hex: lets the audit log correlate without storing it. */
  readonly tokenHash: string;
  /** `exp` of the token. */
  readonly expiresAt: Date;
}

/** Remembers `jti` values until their token expires, across replicas. */
export interface ReplayStore {
  /** Records the jti; resolves false when it was already used. */
  claim(issuer: string, jti: string, expiresAt: Date): Promise<boolean>;
}

export interface VerifyOptions {
  /** Burn the token's `jti` (credential-issuing calls). Reads do not consume. */
  readonly consume: boolean;
}

export interface IdentityVerifier {
  verify(token: string, options: VerifyOptions): Promise<VerifiedIdentity>;
  /** Whether every issuer has its key set loaded (for /readyz). */
  ready(): Promise<boolean>;
}
