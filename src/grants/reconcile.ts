import type { Logger } from 'pino';
import type { AuditWriter } from '../audit/types.js';
import type { Clock } from '../clock.js';
import type { TargetProvider } from '../providers/provider.js';
import type { Database } from '../store/database.js';
import type { GrantStore } from './records.js';

const RECONCILE_LOCK = 0x6c6b_0003;
/** A grant still `issuing` after this long belongs to a broker that died mid-issue. */
export const DEFAULT_ISSUING_GRACE_MS = 120_000;

export interface ReconcileResult {
  readonly orphansRevoked: number;
  readonly staleGrantsFailed: number;
  readonly errors: readonly string[];
}

/**
 * Finds credentials nobody tracks and removes them: a broker killed between
 * creating a PostgreSQL role and recording it leaves a role whose grant is not
 * active; this revokes it and says why in the audit log. One replica at a time.
 */
export async function reconcile(deps: {
  db: Database;
  store: GrantStore;
  audit: AuditWriter;
  clock: Clock;
  logger: Logger;
  targets: ReadonlyMap<string, TargetProvider>;
  issuingGraceMs?: number;
}): Promise<ReconcileResult> {
  const errors: string[] = [];
  let orphansRevoked = 0;
  let staleGrantsFailed = 0;
  await deps.db.transaction(async (tx) => {
    const lock = await tx.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [RECONCILE_LOCK]);
    if (!lock.rows[0]?.ok) return; // another replica is reconciling
    const now = deps.clock.now();
    const graceBefore = new Date(now.getTime() - (deps.issuingGraceMs ?? DEFAULT_ISSUING_GRACE_MS));

    const stale = await tx.query(
      `UPDATE grants SET status = 'failed', end_reason = 'broker_stopped_during_issue'
        WHERE status = 'issuing' AND created_at <= $1 RETURNING id, issuer, subject, kind, target, rule`,
      [graceBefore],
    );
    for (const g of stale.rows as { id: string; issuer: string; subject: string; kind: string; target: string; rule: string }[]) {
      staleGrantsFailed++;
      await deps.audit.append({
        type: 'grant.failed', outcome: 'error', issuer: g.issuer, subject: g.subject, kind: g.kind, target: g.target, rule: g.rule, grantId: g.id,
        error: { code: 'broker_stopped_during_issue', message: 'the broker stopped before the result of this grant was recorded; anything issued is revoked as an orphan' },
      });
    }

    for (const target of deps.targets.values()) {
      if (!target.listIssued) continue;
      try {
        const artifacts = await target.listIssued();
        const ids = artifacts.flatMap((a) => (a.grantId ? [a.grantId] : []));
        const live = await deps.store.liveGrantIds(target.kind, target.name, ids, graceBefore);
        for (const artifact of artifacts) {
          if (artifact.grantId && live.has(artifact.grantId)) continue;
          await target.revoke({ grantId: artifact.grantId ?? '', providerRef: artifact.providerRef, reason: 'orphan' });
          orphansRevoked++;
          await deps.audit.append({
            type: 'grant.orphan_revoked', outcome: 'success', kind: target.kind, target: target.name,
            providerRef: artifact.providerRef, ...(artifact.grantId ? { grantId: artifact.grantId } : {}),
            details: { why: 'found on the backend with no active grant (broker stopped mid-issue, or the grant ended and its revocation was lost)' },
          });
        }
        // Only after orphans are gone: a scope group still used by an orphan login is not unused.
        const pruned = (await target.pruneUnused?.()) ?? [];
        if (pruned.length > 0) {
          await deps.audit.append({
            type: 'target.pruned', outcome: 'success', kind: target.kind, target: target.name,
            details: { removed: pruned, why: 'shared objects no credential uses any more (PostgreSQL scope groups with no member login)' },
          });
        }
      } catch (err) {
        errors.push(`${target.name}: ${(err as Error).message}`);
        deps.logger.warn({ target: target.name, err: (err as Error).message }, 'reconciliation of target failed; will retry');
      }
    }
  });
  return { orphansRevoked, staleGrantsFailed, errors };
}
