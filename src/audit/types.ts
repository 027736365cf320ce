/**
 * The audit event vocabulary. Secrets never enter an event: no token (only its
 * hash), no password, key or session token. Identifiers that help an incident
 * responder (certificate serial, DB role name, AWS access key id) do.
 */
export type AuditEventType =
  | 'grant.requested' // intent recorded before a provider is called
  | 'grant.issued'
  | 'grant.denied'
  | 'grant.failed'
  | 'grant.pending_approval'
  | 'grant.approved'
  | 'grant.approval_denied'
  | 'grant.revoked'
  | 'grant.expired'
  | 'grant.revoke_failed'
  | 'grant.orphan_revoked'
  | 'target.pruned'
  | 'token.rejected'
  | 'audit.read'
  | 'aws.sessions_revoked';

export type AuditOutcome = 'intent' | 'success' | 'denied' | 'error';

export interface AuditEventInput {
  readonly type: AuditEventType;
  readonly outcome: AuditOutcome;
  readonly requestId?: string;
  readonly clientAddress?: string;
  readonly issuer?: string;
  readonly subject?: string;
  /** Selected, non-secret claims (repository, ref, workflow, groups...). */
  readonly claims?: Readonly<Record<string, unknown>>;
  /** SHA-256 of the presented token (hex). */
  readonly tokenHash?: string;
  readonly rule?: string;
  readonly policyHash?: string;
  readonly kind?: string;
  readonly target?: string;
  readonly scope?: unknown;
  readonly grantId?: string;
  readonly providerRef?: string;
  readonly expiresAt?: string;
  /** Why: policy evaluation of every rule considered, or the error. */
  readonly reasons?: unknown;
  readonly error?: { readonly code: string; readonly message: string };
  /** Provider facts (serial, role name, access key id...) and other context. */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** An event as stored: its place in the log and the hash that commits to it. */
export interface AuditRecord extends AuditEventInput {
  /** Position in the log: the leaf index in the Merkle tree, dense from 0 across all replicas. */
  readonly seq: number;
  readonly time: string;
  /**
   * Base64 leaf hash of event `seq - 1` (absent on the first event): a hash
   * chain beside the tree, so a verifier can name the event that was changed.
   */
  readonly prev?: string;
}

export interface AuditWriter {
  /**
   * Appends one event and resolves once it is durably committed. Rejects with
   * AuditUnavailable when it cannot be: callers fail closed.
   */
  append(event: AuditEventInput): Promise<AuditRecord>;
}

/**
 * A change to the `grants` table that belongs with an audit event: the new
 * grant row with its intent, the grant's activation with its result. Both are
 * committed in the event's transaction, or neither is.
 */
export type GrantLedgerWrite =
  | { readonly insert: Readonly<Record<string, unknown>> }
  | { readonly activate: { readonly id: string; readonly issuedAt: Date; readonly providerRef: string } };

export interface AuditLedgerWriter extends AuditWriter {
  /**
   * Appends the event and applies `write` in the same transaction. Resolves
   * with the record and, for an activation, the grant's row as it now is
   * (undefined when the grant was no longer issuing, so nothing changed).
   */
  appendWith(event: AuditEventInput, write: GrantLedgerWrite): Promise<{ record: AuditRecord; grant?: Readonly<Record<string, unknown>> }>;
}
