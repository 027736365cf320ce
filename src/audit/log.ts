import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { AuditUnavailable } from '../errors.js';
import { NEW_GRANT_COLUMNS } from '../grants/records.js';
import { namedStatement, type Database, type NamedStatement } from '../store/database.js';
import { canonicalEventBytes, leafHash } from './canonical.js';
import type { AuditEventInput, AuditLedgerWriter, AuditRecord, GrantLedgerWrite } from './types.js';


export interface AuditLogOptions {
  /** Most events committed in one transaction. */
  readonly maxBatch?: number;
  /** How long a batch waits for the append lock or a row lock before failing closed. */
  readonly lockTimeoutMs?: number;
}

interface Pending {
  readonly event: AuditEventInput;
  readonly write: GrantLedgerWrite | undefined;
  readonly resolve: (result: { record: AuditRecord; grant?: Readonly<Record<string, unknown>> }) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Appends events to `audit_events`, one sequence across all replicas, and
 * mirrors each committed event to the JSON log for a SIEM.
 *
 * Group commit: appends that arrive while a batch is being written wait for
 * the next one, which takes the append lock once and inserts all its events
 * in one statement; an append to an idle log starts at once, without waiting
 * for a turn of the event loop. Each caller's promise resolves only after its
 * own batch committed; a failed batch rejects every caller in it with
 * AuditUnavailable.
 */
export class AuditLog implements AuditLedgerWriter {
  readonly #maxBatch: number;
  readonly #lockTimeoutMs: number;
  #queue: Pending[] = [];
  #draining: Promise<void> | undefined;
  #closed = false;
  /** The head of the log after this process's last append; unknown until read, or after another writer moved it. */
  #head: { next: number; prev: Buffer | undefined } | undefined;

  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly logger?: Logger,
    options: AuditLogOptions = {},
  ) {
    this.#maxBatch = options.maxBatch ?? 2000;
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 5000;
  }

  append(event: AuditEventInput): Promise<AuditRecord> {
    return this.#enqueue(event, undefined).then((result) => result.record);
  }

  appendWith(event: AuditEventInput, write: GrantLedgerWrite): Promise<{ record: AuditRecord; grant?: Readonly<Record<string, unknown>> }> {
    return this.#enqueue(event, write);
  }

  #enqueue(event: AuditEventInput, write: GrantLedgerWrite | undefined): Promise<{ record: AuditRecord; grant?: Readonly<Record<string, unknown>> }> {
    if (this.#closed) return Promise.reject(new AuditUnavailable('the audit log is closed; nothing was issued'));
    let plain: AuditEventInput;
    try {
      plain = stripUndefined(event);
    } catch (err) {
      return Promise.reject(new TypeError(`audit event ${event.type} is not JSON: ${(err as Error).message}`));
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ event: plain, write, resolve, reject });
      // Start once the current microtask checkpoint is over, so that appends made in the same
      // synchronous run share a batch without a lone append waiting a turn of the event loop.
      // Appends that arrive while a batch is being written form the next one (group commit).
      this.#draining ??= new Promise<void>((done) => queueMicrotask(done)).then(() => this.#drain());
    });
  }

  /** Commits what is queued and refuses further appends. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#draining;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.#maxBatch);
        let records: AuditRecord[];
        let activated: Map<string, Record<string, unknown>>;
        try {
          ({ records, activated } = await this.#commit(batch));
        } catch (err) {
          this.logger?.error({ err: { message: (err as Error).message }, events: batch.length }, 'audit append failed');
          const failure = new AuditUnavailable('the audit log could not be written; nothing was issued', {}, { cause: err });
          for (const pending of batch) pending.reject(failure);
          continue;
        }
        batch.forEach((pending, i) => {
          const record = records[i] as AuditRecord;
          this.logger?.info({ audit: record }, record.type);
          const grant = pending.write && 'activate' in pending.write ? activated.get(pending.write.activate.id) : undefined;
          pending.resolve(grant ? { record, grant } : { record });
        });
      }
    } finally {
      this.#draining = undefined;
    }
  }

  /**
   * Commits one batch in one round trip, built against the head this process
   * last saw; when another replica appended meanwhile, the function answers
   * the real head and the batch is rebuilt on it (each event's `seq` and
   * `prev` are part of what is hashed).
   */
  async #commit(batch: readonly Pending[]): Promise<{ records: AuditRecord[]; activated: Map<string, Record<string, unknown>> }> {
    const events = batch.map((p) => p.event);
    const { sql, ledgerParams } = ledgerStatement(batch);
    // next = -1: the head is unknown; the function answers it (under the lock timeout) without inserting.
    let head = this.#head ?? { next: -1, prev: undefined };
    for (let attempt = 1; ; attempt++) {
      const built = this.#build(events, head);
      const result = await this.db.query<{ appended: boolean; head_seq: string | null; head_hash: Buffer | null; activated?: Record<string, unknown>[] }>(
        sql,
        [head.next, Math.max(1, Math.floor(this.#lockTimeoutMs)), ...built.columns, ...ledgerParams],
      );
      const row = result.rows[0];
      if (row?.appended) {
        this.#head = built.after;
        return { records: built.records, activated: new Map((row.activated ?? []).map((g) => [g['id'] as string, g])) };
      }
      // Another writer moved the head: rebuild on the real one.
      head = row?.head_seq == null ? { next: 0, prev: undefined } : { next: Number(row.head_seq) + 1, prev: row.head_hash ?? undefined };
      this.#head = undefined;
      if (attempt >= 20) throw new Error('the audit log head kept moving; giving up this batch');
    }
  }

  #build(events: readonly AuditEventInput[], head: { next: number; prev: Buffer | undefined }) {
    let seq = head.next;
    let prev = head.prev;
    const time = this.clock.now().toISOString();
    const columns: unknown[][] = Array.from({ length: 14 }, () => []);
    const records: AuditRecord[] = [];
    for (const event of events) {
      const record: AuditRecord = { ...event, seq, time, ...(prev ? { prev: prev.toString('base64') } : {}) };
      const bytes = canonicalEventBytes(record);
      const hash = leafHash(bytes);
      const row = [
        seq, time, record.type, record.outcome, record.requestId ?? null, record.issuer ?? null, record.subject ?? null,
        typeof record.claims?.['repository'] === 'string' ? record.claims['repository'] : null,
        record.kind ?? null, record.target ?? null, record.grantId ?? null, record.providerRef ?? null,
        bytes.toString('utf8'), hash,
      ];
      row.forEach((value, i) => (columns[i] as unknown[]).push(value));
      records.push(record);
      prev = hash;
      seq += 1;
    }
    return { columns, records, after: { next: seq, prev } };
  }
}

/** JSON canonicalization has no `undefined`: drop those keys so the stored body is exactly what is hashed. */
function stripUndefined<T extends object>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

const APPEND_CALL = `latchkey_append_audit($1, $2, $3::bigint[], $4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                                          $10::text[], $11::text[], $12::text[], $13::uuid[], $14::text[], $15::text[], $16::bytea[])`;

/** The append alone. */
const APPEND = namedStatement('audit_append', `SELECT * FROM ${APPEND_CALL}`);

/**
 * The append with the grant rows it inserts and the grants it activates, each
 * only when the append happened (one statement, so one transaction: the
 * events and the rows commit together or not at all, and a batch rebuilt on
 * a moved head writes them once).
 */
const APPEND_WITH_GRANTS = namedStatement(
  'audit_append_with_grants',
  `WITH appended AS (SELECT * FROM ${APPEND_CALL}),
       inserted AS (
         INSERT INTO grants (${NEW_GRANT_COLUMNS})
         SELECT ${NEW_GRANT_COLUMNS} FROM jsonb_populate_recordset(NULL::grants, $17::jsonb)
          WHERE (SELECT appended FROM appended)),
       activated AS (
         UPDATE grants g SET status = 'active', issued_at = u.issued_at, provider_ref = u.provider_ref
           FROM jsonb_to_recordset($18::jsonb) AS u(id uuid, issued_at timestamptz, provider_ref text)
          WHERE g.id = u.id AND g.status = 'issuing' AND (SELECT appended FROM appended)
         RETURNING g.*)
     SELECT a.*, (SELECT coalesce(json_agg(activated), '[]'::json) FROM activated) AS activated FROM appended a`,
);

/** The batch's statement and its grant parameters. */
function ledgerStatement(batch: readonly Pending[]): { sql: NamedStatement; ledgerParams: unknown[] } {
  const inserts: Readonly<Record<string, unknown>>[] = [];
  const activations: { id: string; issued_at: string; provider_ref: string }[] = [];
  for (const { write } of batch) {
    if (!write) continue;
    if ('insert' in write) inserts.push(write.insert);
    else activations.push({ id: write.activate.id, issued_at: write.activate.issuedAt.toISOString(), provider_ref: write.activate.providerRef });
  }
  if (inserts.length === 0 && activations.length === 0) return { sql: APPEND, ledgerParams: [] };
  return { sql: APPEND_WITH_GRANTS, ledgerParams: [JSON.stringify(inserts), JSON.stringify(activations)] };
}
