import type { Queryable } from '../store/database.js';

export type GrantStatus =
  | 'pending_approval'
  | 'approved'
  | 'issuing'
  | 'active'
  | 'revoking'
  | 'revoked'
  | 'expired'
  | 'failed'
  | 'denied';

/** A grant as stored. Never holds the credential: that is returned once and forgotten. */
export interface GrantRecord {
  readonly id: string;
  readonly status: GrantStatus;
  readonly issuer: string;
  readonly subject: string;
  /** Selected, non-secret claims of the requester. */
  readonly claims: Readonly<Record<string, unknown>>;
  readonly rule: string;
  readonly policyHash: string;
  readonly kind: string;
  readonly target: string;
  readonly scope: unknown;
  readonly reason: string | null;
  readonly requestId: string;
  readonly createdAt: Date;
  readonly issuedAt: Date | null;
  readonly expiresAt: Date;
  readonly revokedAt: Date | null;
  readonly revokedBy: string | null;
  /** Why the grant ended: revoked, expired, orphan, audit_failed, issue_failed... */
  readonly endReason: string | null;
  readonly approvedBy: string | null;
  readonly approvedAt: Date | null;
  readonly providerRef: string | null;
  readonly revokeOnExpiry: boolean;
  readonly revokeAttempts: number;
  readonly revokeError: string | null;
  readonly nextAttemptAt: Date | null;
  /** For a grant waiting for approval: the credential's lifetime, counted from the claim. */
  readonly ttlSeconds: number | null;
}

interface GrantRow {
  id: string;
  status: GrantStatus;
  issuer: string;
  subject: string;
  claims: Record<string, unknown>;
  rule: string;
  policy_hash: string;
  kind: string;
  target: string;
  scope: unknown;
  reason: string | null;
  request_id: string;
  created_at: Date;
  issued_at: Date | null;
  expires_at: Date;
  revoked_at: Date | null;
  revoked_by: string | null;
  end_reason: string | null;
  approved_by: string | null;
  approved_at: Date | null;
  provider_ref: string | null;
  revoke_on_expiry: boolean;
  revoke_attempts: number;
  revoke_error: string | null;
  next_attempt_at: Date | null;
  ttl_seconds: number | null;
}

export function toGrantRecord(row: GrantRow): GrantRecord {
  return {
    id: row.id,
    status: row.status,
    issuer: row.issuer,
    subject: row.subject,
    claims: row.claims,
    rule: row.rule,
    policyHash: row.policy_hash,
    kind: row.kind,
    target: row.target,
    scope: row.scope,
    reason: row.reason,
    requestId: row.request_id,
    createdAt: row.created_at,
    issuedAt: row.issued_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    revokedBy: row.revoked_by,
    endReason: row.end_reason,
    approvedBy: row.approved_by,
    approvedAt: row.approved_at,
    providerRef: row.provider_ref,
    revokeOnExpiry: row.revoke_on_expiry,
    revokeAttempts: row.revoke_attempts,
    revokeError: row.revoke_error,
    nextAttemptAt: row.next_attempt_at,
    ttlSeconds: row.ttl_seconds ?? null,
  };
}

/** What is known of a grant when it is first recorded. */
export type NewGrant = Pick<
  GrantRecord,
  'id' | 'issuer' | 'subject' | 'claims' | 'rule' | 'policyHash' | 'kind' | 'target' | 'scope' | 'reason' | 'requestId' | 'createdAt' | 'expiresAt' | 'revokeOnExpiry'
> & { readonly status: 'issuing' | 'pending_approval'; readonly ttlSeconds?: number };

/** The columns a new grant row carries (newGrantRow's keys); the rest take their defaults. */
export const NEW_GRANT_COLUMNS = 'id, status, issuer, subject, claims, rule, policy_hash, kind, target, scope, reason, request_id, created_at, expires_at, revoke_on_expiry, ttl_seconds';

/** A new grant by column, as JSON: what the audit log's ledger write inserts with the intent event. */
export function newGrantRow(g: NewGrant): Readonly<Record<string, unknown>> {
  return {
    id: g.id,
    status: g.status,
    issuer: g.issuer,
    subject: g.subject,
    claims: g.claims,
    rule: g.rule,
    policy_hash: g.policyHash,
    kind: g.kind,
    target: g.target,
    scope: g.scope ?? null,
    reason: g.reason,
    request_id: g.requestId,
    created_at: g.createdAt.toISOString(),
    expires_at: g.expiresAt.toISOString(),
    revoke_on_expiry: g.revokeOnExpiry,
    ttl_seconds: g.ttlSeconds ?? null,
  };
}

const TIMESTAMP_COLUMNS = ['created_at', 'issued_at', 'expires_at', 'revoked_at', 'approved_at', 'next_attempt_at'] as const;

/** A grants row that came back as JSON (timestamps as strings) as a GrantRecord. */
export function grantFromJson(json: Readonly<Record<string, unknown>>): GrantRecord {
  const row = { ...json } as Record<string, unknown>;
  for (const column of TIMESTAMP_COLUMNS) {
    const value = row[column];
    row[column] = typeof value === 'string' ? new Date(value) : null;
  }
  return toGrantRecord(row as unknown as GrantRow);
}

/** SQL for the `grants` table; the lifecycle logic lives in GrantService. */
export class GrantStore {
  constructor(private readonly db: Queryable) {}

  /**
   * Inserts a grant row on its own. A grant's row normally goes in with its
   * intent event (see newGrantRow); this is for recording one whose intent
   * could not be written.
   */
  async insert(g: NewGrant): Promise<void> {
    await this.db.query(
      `INSERT INTO grants (${NEW_GRANT_COLUMNS}) SELECT ${NEW_GRANT_COLUMNS} FROM jsonb_populate_record(NULL::grants, $1::jsonb)`,
      [JSON.stringify(newGrantRow(g))],
    );
  }

  async get(id: string): Promise<GrantRecord | undefined> {
    const r = await this.db.query<GrantRow>('SELECT * FROM grants WHERE id = $1', [id]);
    return r.rows[0] ? toGrantRecord(r.rows[0]) : undefined;
  }

  /** Moves a grant from one of `from` to `to`, setting extra columns; false when it was not in `from`. */
  async transition(id: string, from: readonly GrantStatus[], to: GrantStatus, set: Partial<Record<SettableColumn, unknown>> = {}): Promise<GrantRecord | undefined> {
    const columns = Object.keys(set) as SettableColumn[];
    const assignments = columns.map((c, i) => `${c} = $${i + 4}`);
    const r = await this.db.query<GrantRow>(
      `UPDATE grants SET status = $3${assignments.length ? ', ' + assignments.join(', ') : ''}
       WHERE id = $1 AND status = ANY($2::text[]) RETURNING *`,
      [id, from, to, ...columns.map((c) => set[c])],
    );
    return r.rows[0] ? toGrantRecord(r.rows[0]) : undefined;
  }

  async listForSubject(issuer: string, subject: string, limit: number): Promise<GrantRecord[]> {
    const r = await this.db.query<GrantRow>(
      'SELECT * FROM grants WHERE issuer = $1 AND subject = $2 ORDER BY created_at DESC LIMIT $3',
      [issuer, subject, limit],
    );
    return r.rows.map(toGrantRecord);
  }

  async listPendingApproval(limit: number): Promise<GrantRecord[]> {
    const r = await this.db.query<GrantRow>(
      "SELECT * FROM grants WHERE status = 'pending_approval' ORDER BY created_at LIMIT $1",
      [limit],
    );
    return r.rows.map(toGrantRecord);
  }

  /** What a target issued and ended before its expiry (revoked, or failed after issuing): for revocation lists. */
  async endedBeforeExpiry(target: string, now: Date): Promise<{ providerRef: string; revokedAt: Date }[]> {
    const r = await this.db.query<{ provider_ref: string; revoked_at: Date }>(
      `SELECT provider_ref, coalesce(revoked_at, created_at) AS revoked_at FROM grants
        WHERE target = $1 AND status IN ('revoked', 'revoking', 'failed') AND provider_ref IS NOT NULL AND expires_at > $2
        ORDER BY revoked_at`,
      [target, now],
    );
    return r.rows.map((row) => ({ providerRef: row.provider_ref, revokedAt: row.revoked_at }));
  }

  /** Grant ids that still own something on a backend (for orphan reconciliation). */
  async liveGrantIds(kind: string, target: string, ids: readonly string[], issuingGraceBefore: Date): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const r = await this.db.query<{ id: string }>(
      `SELECT id FROM grants WHERE kind = $1 AND target = $2 AND id = ANY($3::uuid[])
         AND (status IN ('active', 'revoking') OR (status = 'issuing' AND created_at > $4))`,
      [kind, target, ids.filter(isUuid), issuingGraceBefore],
    );
    return new Set(r.rows.map((row) => row.id));
  }
}

type SettableColumn =
  | 'issued_at'
  | 'revoked_at'
  | 'revoked_by'
  | 'end_reason'
  | 'approved_by'
  | 'approved_at'
  | 'provider_ref'
  | 'revoke_attempts'
  | 'revoke_error'
  | 'next_attempt_at'
  | 'expires_at';

export function isUuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
}
