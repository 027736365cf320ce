import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditEventInput, AuditLedgerWriter } from '../audit/types.js';
import type { Clock } from '../clock.js';
import type { AllowEntry } from '../config/load.js';
import {
  AuditUnavailable,
  auditErrorFacts,
  Conflict,
  Forbidden,
  InvalidScope,
  NotFound,
  PolicyDenied,
  ProviderUnavailable,
  UnknownTarget,
  isLatchkeyError,
} from '../errors.js';
import type { VerifiedIdentity } from '../identity/types.js';
import type { CompiledPolicy, GrantRequest, PolicyDecision, PolicySubject, PublicExplanation } from '../policy/types.js';
import type { ProviderKind, TargetProvider } from '../providers/provider.js';
import type { Database } from '../store/database.js';
import type { RoleName } from '../config/schema.js';
import { GrantStore, grantFromJson, isUuid, newGrantRow, type GrantRecord, type NewGrant } from './records.js';
import { selectClaims } from './claims.js';
import type { SubjectRateLimiter } from './rate-limit.js';

/** Who is asking, and from where. */
export interface GrantCaller {
  readonly identity: VerifiedIdentity;
  readonly roles: ReadonlySet<RoleName>;
  readonly requestId: string;
  readonly clientAddress: string;
}

/** A granted credential, returned once. */
export interface IssuedGrant {
  readonly grant: GrantRecord;
  readonly credential: Readonly<Record<string, unknown>>;
}

/** Result of a request that must wait for someone else's approval. */
export interface PendingGrant {
  readonly grant: GrantRecord;
  readonly pending: true;
}

export interface GrantServiceDeps {
  readonly db: Database;
  readonly audit: AuditLedgerWriter;
  readonly policy: CompiledPolicy;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly kinds: readonly ProviderKind[];
  readonly targets: ReadonlyMap<string, TargetProvider>;
  readonly targetErrors: ReadonlyMap<string, string>;
  /** Told about every new expiry, so the expiry scheduler can wake exactly then. */
  readonly onExpiryScheduled?: (expiresAt: Date) => void;
  /** How long a grant that needs approval may wait for it and its claim (default one hour). */
  readonly approvalWindowSeconds?: number;
  readonly observe?: (kind: string, outcome: string, seconds: number) => void;
  /** Per-caller request limit (checked before the policy). */
  readonly rateLimiter?: SubjectRateLimiter;
  /** Fault injection for crash-safety tests: runs after the provider issued, before the result is recorded. */
  readonly afterProviderIssue?: (grantId: string) => void;
}

/**
 * The one place that orders the steps of a grant:
 * verify (done by the caller) -> decide -> record the intent -> issue ->
 * record the result -> respond. The audit write is fail-closed: no record, no
 * credential; a credential whose result record fails is revoked at once.
 */
export class GrantService {
  readonly store: GrantStore;

  constructor(private readonly deps: GrantServiceDeps) {
    this.store = new GrantStore(deps.db);
  }

  /** Decides without issuing (for `explain`): the decision and what this caller may see of it. */
  explain(caller: GrantCaller, request: GrantRequest): { decision: PolicyDecision; explanation: PublicExplanation } {
    const { decision } = this.decide(caller.identity, request);
    const explanation = this.deps.policy.explainTo(decision, subjectOf(caller.identity), caller.roles.has('admin'));
    return { decision, explanation };
  }

  /**
   * Records a request refused before it could be decided (its body was not a
   * grant request): it still used a token, so it is an audited outcome. Throws `err`.
   */
  async refuseUnreadable(caller: GrantCaller, err: unknown): Promise<never> {
    // It counts against the caller's request budget like any other request; over it, that is the answer.
    let refusal = err;
    try {
      this.deps.rateLimiter?.take(caller.identity.issuerName, caller.identity.subject);
    } catch (limited) {
      refusal = limited;
    }
    await this.appendOrFail({ ...this.callerBase(caller), type: 'grant.denied', outcome: 'denied', error: auditErrorFacts(refusal) });
    throw refusal;
  }

  /** Handles `POST /v1/grants`. */
  async request(caller: GrantCaller, request: GrantRequest): Promise<IssuedGrant | PendingGrant> {
    const started = performance.now();
    const base = this.eventBase(caller, request);
    let decision: PolicyDecision;
    let scope: unknown;
    try {
      this.deps.rateLimiter?.take(caller.identity.issuerName, caller.identity.subject);
      ({ decision, scope } = this.decide(caller.identity, request));
    } catch (err) {
      // A malformed scope is the caller's fault, and still an audited outcome.
      await this.appendOrFail({ ...base, type: 'grant.denied', outcome: 'denied', error: auditErrorFacts(err) });
      this.observe(request.kind, isLatchkeyError(err) && err.code === 'rate_limited' ? 'rate_limited' : 'invalid', started);
      throw err;
    }
    const { policy } = this.deps;
    if (!decision.allowed || !decision.rule || !decision.allow) {
      await this.appendOrFail({ ...base, type: 'grant.denied', outcome: 'denied', policyHash: decision.policyHash, reasons: decision.evaluations });
      this.observe(request.kind, 'denied', started);
      const explanation = policy.explainTo(decision, subjectOf(caller.identity), caller.roles.has('admin'));
      throw new PolicyDenied(`denied: ${explanation.summary}`, { explanation });
    }

    const now = this.deps.clock.now();
    const target = this.openTarget(request.target);
    const grantId = randomUUID();
    const pending = decision.allow.require_approval;
    // A grant that waits for approval lasts as long as its approval window; its credential's
    // lifetime (kept in ttlSeconds) starts when the requester claims it.
    const waitSeconds = pending ? (this.deps.approvalWindowSeconds ?? 3600) : decision.ttlSeconds;
    const expiresAt = new Date(now.getTime() + waitSeconds * 1000);
    const claims = selectClaims(caller.identity.claims, decision.rule);
    const record: NewGrant = {
      id: grantId,
      status: pending ? 'pending_approval' : 'issuing',
      issuer: caller.identity.issuerName,
      subject: caller.identity.subject,
      claims,
      rule: decision.rule.name,
      policyHash: decision.policyHash,
      kind: request.kind,
      target: request.target,
      scope: publicScope(scope),
      reason: request.reason ?? null,
      requestId: caller.requestId,
      createdAt: now,
      expiresAt,
      revokeOnExpiry: target.revokeOnExpiry,
      ...(pending ? { ttlSeconds: decision.ttlSeconds } : {}),
    };
    const facts: AuditEventInput = {
      ...base,
      claims,
      rule: decision.rule.name,
      policyHash: decision.policyHash,
      grantId,
      expiresAt: expiresAt.toISOString(),
      type: 'grant.requested',
      outcome: 'intent',
    };

    if (pending) {
      await this.recordOrFail(grantId, { ...facts, type: 'grant.pending_approval', outcome: 'intent' }, record);
      this.observe(request.kind, 'pending_approval', started);
      const grant = (await this.store.get(grantId)) as GrantRecord;
      return { grant, pending: true };
    }
    const issued = await this.issue(target, grantId, caller, decision.allow, scope, now, expiresAt, facts, record);
    this.observe(request.kind, 'granted', started);
    return issued;
  }

  /**
   * Issues an approved grant to its requester (`POST /v1/grants/:id/claim`):
   * the approver never sees the credential.
   */
  async claimApproved(caller: GrantCaller, grantId: string, presented: Readonly<Record<string, unknown>> = {}): Promise<IssuedGrant> {
    const grant = await this.visibleGrant(caller, grantId, { ownerOnly: true });
    if (grant.status !== 'approved') {
      throw new Conflict(`grant ${grantId} is ${grant.status}; only an approved grant can be claimed`);
    }
    const now = this.deps.clock.now();
    if (grant.expiresAt <= now) throw new Conflict(`grant ${grantId} was not claimed within its approval window, which ended at ${grant.expiresAt.toISOString()}`);
    const request: GrantRequest = {
      kind: grant.kind,
      target: grant.target,
      scope: this.approvedScope(grant, presented),
      ...(grant.ttlSeconds ? { ttlSeconds: grant.ttlSeconds } : {}),
    };
    // The approval covered this request under this rule; the requester's current token must still qualify for it.
    const { decision, scope } = this.decide(caller.identity, request);
    if (!decision.allowed || !decision.rule || !decision.allow || decision.rule.name !== grant.rule) {
      throw new PolicyDenied(`grant ${grantId} was approved under rule ${grant.rule}, which no longer allows it for this token`, {
        explanation: this.deps.policy.explainTo(decision, subjectOf(caller.identity), caller.roles.has('admin')),
      });
    }
    // The credential's lifetime starts now, under the rule as it stands now.
    const expiresAt = grant.ttlSeconds ? new Date(now.getTime() + decision.ttlSeconds * 1000) : grant.expiresAt;
    const claimed = await this.store.transition(grantId, ['approved'], 'issuing', { expires_at: expiresAt });
    if (!claimed) throw new Conflict(`grant ${grantId} was claimed already`);
    const facts: AuditEventInput = {
      ...this.eventBase(caller, request),
      claims: selectClaims(caller.identity.claims, decision.rule),
      rule: grant.rule,
      policyHash: decision.policyHash,
      grantId,
      expiresAt: expiresAt.toISOString(),
      type: 'grant.requested',
      outcome: 'intent',
    };
    return this.issue(this.openTarget(grant.target), grantId, caller, decision.allow, scope, now, expiresAt, facts);
  }

  /**
   * The scope that was approved. A CSR is stored only as its hash, so the
   * requester presents it again and it must be the very one approved.
   */
  private approvedScope(grant: GrantRecord, presented: Readonly<Record<string, unknown>>): Record<string, unknown> {
    const stored = { ...(grant.scope as Record<string, unknown>) };
    const csrHash = stored['csr_sha256'];
    if (typeof csrHash !== 'string') return stored;
    const csr = presented['csr'];
    if (typeof csr !== 'string') throw new InvalidScope('this grant was approved for a CSR: present the same CSR as "scope.csr" to claim it');
    if (sha256Hex(csr) !== csrHash) throw new InvalidScope('the CSR presented is not the one that was approved');
    delete stored['csr_sha256'];
    return { ...stored, csr };
  }

  /** An approver (not the requester) approves or denies a pending grant. */
  async decideApproval(caller: GrantCaller, grantId: string, approve: boolean, note?: string): Promise<GrantRecord> {
    if (!caller.roles.has('approver') && !caller.roles.has('admin')) {
      throw new Forbidden('approving needs the approver role');
    }
    const grant = isUuid(grantId) ? await this.store.get(grantId) : undefined;
    if (!grant) throw new NotFound(`no grant ${JSON.stringify(grantId.slice(0, 64))}`);
    if (grant.issuer === caller.identity.issuerName && grant.subject === caller.identity.subject) {
      throw new Forbidden('a grant must be approved by someone other than its requester');
    }
    if (grant.status !== 'pending_approval') throw new Conflict(`grant ${grantId} is ${grant.status}, not pending approval`);
    const who = `${caller.identity.issuerName}:${caller.identity.subject}`;
    const now = this.deps.clock.now();
    await this.appendOrFail({
      type: approve ? 'grant.approved' : 'grant.approval_denied',
      outcome: approve ? 'success' : 'denied',
      requestId: caller.requestId,
      clientAddress: caller.clientAddress,
      issuer: caller.identity.issuerName,
      subject: caller.identity.subject,
      kind: grant.kind,
      target: grant.target,
      grantId,
      details: { requester: grant.subject, ...(note ? { note } : {}) },
    });
    const updated = await this.store.transition(grantId, ['pending_approval'], approve ? 'approved' : 'denied', {
      approved_by: who,
      approved_at: now,
      ...(approve ? {} : { end_reason: 'approval_denied' }),
    });
    if (!updated) throw new Conflict(`grant ${grantId} changed while it was being approved`);
    return updated;
  }

  /** Returns a grant the caller may see: its own, or any for admins and auditors. */
  async visibleGrant(caller: Pick<GrantCaller, 'identity' | 'roles'>, grantId: string, options: { ownerOnly?: boolean } = {}): Promise<GrantRecord> {
    if (!isUuid(grantId)) throw new NotFound(`no grant ${JSON.stringify(grantId.slice(0, 64))}`);
    const grant = await this.store.get(grantId);
    const owner = grant && grant.issuer === caller.identity.issuerName && grant.subject === caller.identity.subject;
    const privileged = !options.ownerOnly && (caller.roles.has('admin') || caller.roles.has('auditor') || caller.roles.has('approver'));
    // Someone else's grant is "not found", so ids cannot be probed.
    if (!grant || (!owner && !privileged)) throw new NotFound(`no grant ${grantId}`);
    return grant;
  }

  /** Revokes a grant now (`DELETE /v1/grants/:id`): its owner or an admin. */
  async revoke(caller: GrantCaller, grantId: string): Promise<GrantRecord> {
    const grant = await this.visibleGrant(caller, grantId);
    const owner = grant.issuer === caller.identity.issuerName && grant.subject === caller.identity.subject;
    if (!owner && !caller.roles.has('admin')) throw new Forbidden('only the grant\'s owner or an admin may revoke it');
    if (['revoked', 'expired', 'failed', 'denied'].includes(grant.status)) return grant; // idempotent
    const who = `${caller.identity.issuerName}:${caller.identity.subject}`;
    const now = this.deps.clock.now();
    if (grant.status === 'pending_approval' || grant.status === 'approved') {
      const done = await this.store.transition(grantId, ['pending_approval', 'approved'], 'revoked', { revoked_at: now, revoked_by: who, end_reason: 'revoked' });
      await this.appendOrFail({ ...this.grantEvent(grant, 'grant.revoked', 'success'), requestId: caller.requestId, details: { by: who, before_issue: true } });
      return done ?? grant;
    }
    const claimed = await this.store.transition(grantId, ['active', 'revoking', 'issuing'], 'revoking', { revoked_by: who, end_reason: 'revoked', next_attempt_at: new Date(now.getTime() + 30_000) });
    if (!claimed) return (await this.store.get(grantId)) as GrantRecord;
    return this.finishRevocation(claimed, 'revoked', caller.requestId);
  }

  /**
   * Runs the provider's revoke for a grant in `revoking` and records the end.
   * On failure the grant stays `revoking` with a backoff; the expiry scheduler retries.
   */
  async finishRevocation(grant: GrantRecord, reason: 'revoked' | 'expired', requestId?: string): Promise<GrantRecord> {
    const target = this.deps.targets.get(grant.target);
    const now = this.deps.clock.now();
    try {
      if (!target) throw new ProviderUnavailable(`target ${grant.target} is not open: ${this.deps.targetErrors.get(grant.target) ?? 'not configured'}`);
      if (grant.providerRef) await target.revoke({ grantId: grant.id, providerRef: grant.providerRef, reason });
    } catch (err) {
      const attempts = grant.revokeAttempts + 1;
      const delay = Math.min(60_000, 1000 * 2 ** Math.min(attempts, 6));
      const message = isLatchkeyError(err) ? err.message : 'revocation failed';
      await this.store.transition(grant.id, ['revoking'], 'revoking', {
        revoke_attempts: attempts,
        revoke_error: message,
        next_attempt_at: new Date(now.getTime() + delay),
      });
      this.deps.logger.warn({ grantId: grant.id, attempts, error: message }, 'revocation failed; will retry');
      await this.deps.audit
        .append({ ...this.grantEvent(grant, 'grant.revoke_failed', 'error'), ...(requestId ? { requestId } : {}), error: auditErrorFacts(err), details: { attempts, retry_in_ms: delay } })
        .catch(() => {});
      const current = (await this.store.get(grant.id)) as GrantRecord;
      return current;
    }
    const endStatus = reason === 'expired' ? 'expired' : 'revoked';
    const done = await this.store.transition(grant.id, ['revoking'], endStatus, {
      revoked_at: now,
      revoke_error: null,
      next_attempt_at: null,
      end_reason: reason === 'expired' ? 'expired' : (grant.endReason ?? 'revoked'),
    });
    await this.deps.audit
      .append({ ...this.grantEvent(grant, reason === 'expired' ? 'grant.expired' : 'grant.revoked', 'success'), ...(requestId ? { requestId } : {}), details: { by: grant.revokedBy ?? 'expiry', attempts: grant.revokeAttempts + 1 } })
      .catch((err) => this.deps.logger.error({ grantId: grant.id, err: (err as Error).message }, 'revocation done but its audit record failed'));
    return done ?? grant;
  }

  // ---- steps ---------------------------------------------------------------

  /**
   * The policy's decision and the parsed scope it was made on. The provider
   * issues from that same scope object, so work its scope check did (parsing
   * a CSR, rendering names) is not done again.
   */
  private decide(identity: VerifiedIdentity, request: GrantRequest): { decision: PolicyDecision; scope: unknown } {
    const kind = this.deps.kinds.find((k) => k.kind === request.kind);
    if (!kind) throw new InvalidScope(`unknown kind "${request.kind}" (expected one of: ${this.deps.kinds.map((k) => k.kind).join(', ')})`);
    const { targets } = this.deps.policy.config;
    // Own names only: "__proto__" or "toString" must not resolve through the object prototype.
    const targetConfig = Object.hasOwn(targets, request.target) ? targets[request.target] : undefined;
    if (!targetConfig) throw new UnknownTarget(`no target named "${request.target}"`);
    if (targetConfig.kind !== request.kind) {
      throw new InvalidScope(`target "${request.target}" issues ${targetConfig.kind} credentials, not ${request.kind}`);
    }
    const scope = this.parseScope(kind, request);
    const decision = this.deps.policy.evaluate(
      subjectOf(identity),
      request,
      (allow) => kind.checkScope({ target: targetConfig.settings, allow: allow.settings, scope, claims: identity.claims }),
      this.deps.clock.now(),
    );
    return { decision, scope };
  }

  private parseScope(kind: ProviderKind, request: GrantRequest): unknown {
    const parsed = kind.scopeSchema.safeParse(request.scope ?? {});
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `scope${i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}: ${i.message}`);
      throw new InvalidScope(`invalid scope for ${request.kind}: ${problems.join('; ')}`, { problems });
    }
    return parsed.data;
  }

  private openTarget(name: string): TargetProvider {
    const target = this.deps.targets.get(name);
    if (!target) {
      throw new ProviderUnavailable(`target ${name} is unavailable: ${this.deps.targetErrors.get(name) ?? 'not configured'}`);
    }
    return target;
  }

  private async issue(
    target: TargetProvider,
    grantId: string,
    caller: GrantCaller,
    // Exactly the allowance the decision matched: a rule may hold several for one target.
    allow: AllowEntry,
    scope: unknown,
    now: Date,
    expiresAt: Date,
    facts: AuditEventInput,
    newGrant?: NewGrant,
  ): Promise<IssuedGrant> {
    // Step: record the intent (a new grant's row goes in with it). No record, no credential.
    await this.recordOrFail(grantId, { ...facts, type: 'grant.requested', outcome: 'intent' }, newGrant);

    // Step: the provider issues.
    let issued;
    try {
      issued = await target.issue({
        grantId,
        requestId: caller.requestId,
        subject: caller.identity.subject,
        issuerName: caller.identity.issuerName,
        claims: caller.identity.claims,
        allow: allow.settings,
        scope,
        issuedAt: now,
        expiresAt,
      });
    } catch (err) {
      await this.store.transition(grantId, ['issuing'], 'failed', { end_reason: 'issue_failed' }).catch(() => {});
      await this.deps.audit.append({ ...facts, type: 'grant.failed', outcome: 'error', error: auditErrorFacts(err) }).catch(() => {});
      throw err;
    }

    this.deps.afterProviderIssue?.(grantId);
    // Step: record the result. If that fails, the credential must not survive.
    try {
      // The result event and the grant's activation commit together.
      const result = await this.deps.audit.appendWith(
        { ...facts, type: 'grant.issued', outcome: 'success', providerRef: issued.providerRef, details: issued.auditDetails },
        { activate: { id: grantId, issuedAt: now, providerRef: issued.providerRef } },
      );
      if (!result.grant) throw new Conflict(`grant ${grantId} left the issuing state while being issued`);
      const active = grantFromJson(result.grant);
      if (active.revokeOnExpiry) this.deps.onExpiryScheduled?.(expiresAt);
      return { grant: active, credential: issued.credential };
    } catch (err) {
      this.deps.logger.error({ grantId, err: (err as Error).message }, 'result record failed; revoking the credential just issued');
      await target.revoke({ grantId, providerRef: issued.providerRef, reason: 'audit_failed' }).catch((revokeErr) => {
        this.deps.logger.error({ grantId, err: (revokeErr as Error).message }, 'revoking after a failed result record failed; reconciliation will retry');
      });
      await this.store.transition(grantId, ['issuing', 'active'], 'failed', { end_reason: 'audit_failed', provider_ref: issued.providerRef }).catch(() => {});
      throw err instanceof AuditUnavailable ? err : new AuditUnavailable('the grant could not be recorded; the credential was revoked', {}, { cause: err });
    }
  }

  /**
   * Appends the intent, with the new grant's row when there is one (the same
   * transaction); on failure the grant is recorded as failed, as far as the
   * state database still takes it, and the caller gets 503.
   */
  private async recordOrFail(grantId: string, event: AuditEventInput, newGrant?: NewGrant): Promise<void> {
    try {
      if (newGrant) await this.deps.audit.appendWith(event, { insert: newGrantRow(newGrant) });
      else await this.deps.audit.append(event);
    } catch (err) {
      if (newGrant) await this.store.insert(newGrant).catch(() => {});
      await this.store.transition(grantId, ['issuing', 'pending_approval'], 'failed', { end_reason: 'audit_failed' }).catch(() => {});
      throw err instanceof AuditUnavailable ? err : new AuditUnavailable('the audit log could not be written; nothing was issued', {}, { cause: err });
    }
  }

  private async appendOrFail(event: AuditEventInput): Promise<void> {
    try {
      await this.deps.audit.append(event);
    } catch (err) {
      throw err instanceof AuditUnavailable ? err : new AuditUnavailable('the audit log could not be written', {}, { cause: err });
    }
  }

  /** Who asked, from where, with which token (by hash): what every event about a request carries. */
  private callerBase(caller: GrantCaller) {
    return {
      requestId: caller.requestId,
      clientAddress: caller.clientAddress,
      issuer: caller.identity.issuerName,
      subject: caller.identity.subject,
      tokenHash: caller.identity.tokenHash,
      claims: selectClaims(caller.identity.claims),
    };
  }

  private eventBase(caller: GrantCaller, request: GrantRequest): AuditEventInput {
    return {
      type: 'grant.requested',
      outcome: 'intent',
      ...this.callerBase(caller),
      kind: request.kind,
      target: request.target,
      scope: publicScope(request.scope),
      ...(request.reason ? { details: { reason: request.reason } } : {}),
    };
  }

  private grantEvent(grant: GrantRecord, type: AuditEventInput['type'], outcome: AuditEventInput['outcome']): AuditEventInput {
    return {
      type,
      outcome,
      issuer: grant.issuer,
      subject: grant.subject,
      claims: grant.claims,
      rule: grant.rule,
      policyHash: grant.policyHash,
      kind: grant.kind,
      target: grant.target,
      grantId: grant.id,
      ...(grant.providerRef ? { providerRef: grant.providerRef } : {}),
    };
  }

  private observe(kind: string, outcome: string, started: number): void {
    this.deps.observe?.(kind, outcome, (performance.now() - started) / 1000);
  }
}

function subjectOf(identity: VerifiedIdentity): PolicySubject {
  return { issuerName: identity.issuerName, claims: identity.claims };
}

/** The scope as stored and audited: a CSR is summarised by its hash, never a private key. */
function publicScope(scope: unknown): unknown {
  if (!scope || typeof scope !== 'object') return scope;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(scope as Record<string, unknown>)) {
    if (key === 'csr' && typeof value === 'string') out['csr_sha256'] = sha256Hex(value);
    else out[key] = value;
  }
  return out;
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
