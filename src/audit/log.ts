import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { AuditUnavailable } from '../errors.js';
import type { Database } from '../store/database.js';
import { canonicalEventBytes, leafHash } from './canonical.js';
import type { AuditEventInput, AuditRecord, AuditWriter } from './types.js';

const APPEND_LOCK = 0x6c6b_0002; // one writer at a time across replicas: one unbroken log

/**
 * Appends events to `audit_events`, one sequence across all replicas, and
 * mirrors each committed event to the JSON log for a SIEM.
 */
export class AuditLog implements AuditWriter {
  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly logger?: Logger,
  ) {}

  async append(event: AuditEventInput): Promise<AuditRecord> {
    const time = this.clock.now().toISOString();
    let record: AuditRecord;
    try {
      record = await this.db.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock($1)', [APPEND_LOCK]);
        const next = await tx.query<{ seq: string }>('SELECT coalesce(max(seq) + 1, 0) AS seq FROM audit_events');
        const seq = Number(next.rows[0]?.seq ?? 0);
        const rec: AuditRecord = { ...stripUndefined(event), seq, time };
        const bytes = canonicalEventBytes(rec);
        await tx.query(
          `INSERT INTO audit_events (seq, time, type, outcome, request_id, issuer, subject, repository, kind, target, grant_id, provider_ref, body, leaf_hash)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)`,
          [
            seq, time, rec.type, rec.outcome, rec.requestId ?? null, rec.issuer ?? null, rec.subject ?? null,
            typeof rec.claims?.['repository'] === 'string' ? rec.claims['repository'] : null,
            rec.kind ?? null, rec.target ?? null, rec.grantId ?? null, rec.providerRef ?? null,
            bytes.toString('utf8'), leafHash(bytes),
          ],
        );
        return rec;
      });
    } catch (err) {
      this.logger?.error({ err: { message: (err as Error).message }, event: event.type }, 'audit append failed');
      throw new AuditUnavailable('the audit log could not be written; nothing was issued', {}, { cause: err });
    }
    this.logger?.info({ audit: record }, record.type);
    return record;
  }
}

/** JSON canonicalization has no `undefined`: drop those keys so the stored body is exactly what is hashed. */
function stripUndefined<T extends object>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
