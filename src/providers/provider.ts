import type { z } from 'zod';
import type { Clock } from '../clock.js';
import type { Claims } from '../identity/types.js';
import type { ConditionFailure } from '../policy/types.js';
import type { Logger } from 'pino';

/**
 * The one interface every credential kind implements. `grants/` orders the
 * steps and never knows which kind it drives; adding MySQL means a folder in
 * `providers/` and a line in `registry.ts`.
 *
 * A kind is a factory: it validates its part of the configuration (the target
 * and a rule's allowance), checks a request's scope against an allowance (pure,
 * so the policy can explain a refusal), and opens one `TargetProvider` per
 * configured target.
 */
export interface ProviderKind<TTarget = unknown, TAllow = unknown, TScope = unknown> {
  /** The `kind` string in config and requests: `certificate`, `postgres`, `aws`. */
  readonly kind: string;
  /** Schema of `targets.<name>` (minus `kind`). */
  readonly targetSchema: z.ZodType<TTarget>;
  /** Schema of a rule's `allow[]` entry for this kind (minus `kind`, `target`, `max_ttl`). */
  readonly allowSchema: z.ZodType<TAllow>;
  /** Schema of a request's `scope`. A parse failure is a 400 naming the field. */
  readonly scopeSchema: z.ZodType<TScope>;
  /**
   * Pure: does this scope fit what the rule allows on this target? Returns the
   * failure (for explanations and audit), or null. No I/O here: the catalog
   * check happens in `issue`.
   */
  checkScope(input: ScopeCheckInput<TTarget, TAllow, TScope>): ConditionFailure | null;
  /** Open the target: connect pools, load keys. Failure keeps the target with its reason. */
  open(name: string, target: TTarget, deps: ProviderDeps): Promise<TargetProvider<TAllow, TScope>>;
}

export interface ScopeCheckInput<TTarget, TAllow, TScope> {
  readonly target: TTarget;
  readonly allow: TAllow;
  readonly scope: TScope;
  readonly claims: Claims;
}

export interface ProviderDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  /** Folder for generated material in dev mode (CA key, ...). */
  readonly dataDir: string;
  /** True under `latchkey dev`: providers may generate what production must be given. */
  readonly devMode: boolean;
}

/** Everything a provider needs to issue one credential. */
export interface IssueInput<TAllow, TScope> {
  readonly grantId: string;
  readonly requestId: string;
  readonly subject: string;
  readonly issuerName: string;
  readonly claims: Claims;
  readonly allow: TAllow;
  readonly scope: TScope;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
}

/** What `issue` returns. `credential` goes to the caller once and is never stored. */
export interface IssuedCredential {
  /** Returned to the caller in the 201 body; may hold secrets. */
  readonly credential: Readonly<Record<string, unknown>>;
  /** Identifies what was made (certificate serial, role name, access key id). Not secret. */
  readonly providerRef: string;
  /** Non-secret facts for the audit log (serial, role name, session name, policy hash...). */
  readonly auditDetails: Readonly<Record<string, string | number | boolean | readonly string[]>>;
}

/** Something this provider made, found on the backend (for orphan reconciliation). */
export interface IssuedArtifact {
  readonly providerRef: string;
  /** The grant id recorded on the artifact (role comment, ...), when the backend keeps one. */
  readonly grantId?: string;
}

export interface RevokeInput {
  readonly grantId: string;
  readonly providerRef: string;
  readonly reason: 'revoked' | 'expired' | 'orphan' | 'audit_failed';
}

/** One configured target of a kind. */
export interface TargetProvider<TAllow = unknown, TScope = unknown> {
  readonly kind: string;
  readonly name: string;
  /**
   * Whether expiry needs action on the backend (a PostgreSQL role must be
   * dropped; a certificate or STS session simply stops being valid).
   */
  readonly revokeOnExpiry: boolean;
  /** Make the credential. Throw a LatchkeyError (InvalidScope, ProviderUnavailable...) on failure. */
  issue(input: IssueInput<TAllow, TScope>): Promise<IssuedCredential>;
  /** Undo the credential. Idempotent: revoking twice, or something half-gone, succeeds. */
  revoke(input: RevokeInput): Promise<void>;
  /** What this provider made that still exists on the backend, if the backend can tell. */
  listIssued?(): Promise<IssuedArtifact[]>;
  /**
   * Removes shared backend objects no credential uses any more (PostgreSQL
   * scope groups); reconciliation runs it. Returns what was removed.
   */
  pruneUnused?(): Promise<string[]>;
  /**
   * A signed list of credentials revoked before their expiry, for kinds whose
   * relying parties check revocation themselves (a CRL for certificates).
   * `revoked` comes from the grant records; the provider only signs.
   */
  revocationList?(revoked: readonly { providerRef: string; revokedAt: Date }[], now: Date): Promise<{ der: Buffer; pem: string }>;
  /** Public, non-secret material to serve (the CA bundle, ...). */
  publicInfo?(): Readonly<Record<string, unknown>>;
  /**
   * What revoking a grant of this target does not undo, said in the answer to
   * every revocation (STS sessions stay valid until they expire).
   */
  readonly revocationNote?: string;
  /** True when the backend is reachable (for /readyz). */
  ready(): Promise<boolean>;
  close(): Promise<void>;
}
