import { z } from 'zod';
import { InvalidRequest } from '../errors.js';
import type { Queryable } from '../store/database.js';
import type { AuditRecord } from './types.js';

const text = z.string().min(1).max(512);
const seqNumber = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/**
 * What an auditor can filter on. Every filter is exact except the time range;
 * the provider identifiers (AWS access key id, DB role name, certificate
 * serial) are all the event's provider reference.
 */
export const auditFilterSchema = z.strictObject({
  /** Inclusive lower bound on event time (ISO 8601). */
  from: z.iso.datetime({ offset: true }).optional(),
  /** Exclusive upper bound on event time. */
  to: z.iso.datetime({ offset: true }).optional(),
  subject: text.optional(),
  issuer: text.optional(),
  repository: text.optional(),
  target: text.optional(),
  kind: text.optional(),
  outcome: z.enum(['intent', 'success', 'denied', 'error']).optional(),
  type: text.optional(),
  grantId: z.uuid().optional(),
  providerRef: text.optional(),
  awsAccessKeyId: z.string().regex(/^[A-Z0-9]{16,128}$/, 'expected an AWS access key id such as ASIA...').optional(),
  dbRole: text.optional(),
  certSerial: z.string().regex(/^[0-9A-Fa-f:]{1,128}$/, 'expected a hexadecimal certificate serial').optional(),
  /** Only events with seq < size: the tree of a checkpoint. */
  size: seqNumber.optional(),
  /** Log order (asc, the default) or newest first. */
  order: z.enum(['asc', 'desc']).optional(),
});
export type AuditFilters = z.infer<typeof auditFilterSchema>;

/** Parses filters from query-string values; InvalidRequest names the bad parameter. */
export function parseAuditFilters(values: Record<string, unknown>): AuditFilters {
  const result = auditFilterSchema.safeParse(values);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(query)'}: ${i.message}`);
    throw new InvalidRequest(`invalid audit filter: ${problems.join('; ')}`, { problems });
  }
  return result.data;
}

/** A page of events in log order; `nextCursor` is null on the last page. */
export interface AuditPage {
  readonly events: AuditRecord[];
  readonly nextCursor: string | null;
}

const EQUALITY_FILTERS: [keyof AuditFilters, string][] = [
  ['subject', 'subject'],
  ['issuer', 'issuer'],
  ['repository', 'repository'],
  ['target', 'target'],
  ['kind', 'kind'],
  ['outcome', 'outcome'],
  ['type', 'type'],
  ['grantId', 'grant_id'],
  ['providerRef', 'provider_ref'],
  ['awsAccessKeyId', 'provider_ref'],
  ['dbRole', 'provider_ref'],
  ['certSerial', 'provider_ref'],
];

/** The WHERE clause for filters; values are always bound parameters. */
function whereClause(filters: AuditFilters, values: unknown[]): string[] {
  const conditions: string[] = [];
  for (const [key, column] of EQUALITY_FILTERS) {
    const value = filters[key];
    if (value === undefined) continue;
    values.push(value);
    conditions.push(`${column} = $${values.length}`);
  }
  if (filters.from) {
    values.push(filters.from);
    conditions.push(`time >= $${values.length}`);
  }
  if (filters.to) {
    values.push(filters.to);
    conditions.push(`time < $${values.length}`);
  }
  if (filters.size !== undefined) {
    values.push(filters.size);
    conditions.push(`seq < $${values.length}`);
  }
  return conditions;
}

function parseCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(cursor)) throw new InvalidRequest('cursor: expected the nextCursor of a previous page');
  return Number(cursor);
}

/** One page of events matching `filters`, after `cursor`, in log order (or newest first with order=desc). */
export async function queryAuditEvents(db: Queryable, filters: AuditFilters, cursor: string | undefined, limit: number): Promise<AuditPage> {
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new InvalidRequest('limit: expected 1 to 1000');
  const descending = filters.order === 'desc';
  const values: unknown[] = [];
  const conditions = whereClause(filters, values);
  const after = parseCursor(cursor);
  if (after !== undefined) {
    values.push(after);
    conditions.push(`seq ${descending ? '<' : '>'} $${values.length}`);
  }
  values.push(limit + 1);
  const sql = `SELECT body FROM audit_events ${conditions.length ? `WHERE ${conditions.join(' AND ')}` : ''}
    ORDER BY seq ${descending ? 'DESC' : 'ASC'} LIMIT $${values.length}`;
  const result = await db.query<{ body: string }>(sql, values);
  const rows = result.rows.slice(0, limit);
  const events = rows.map((row) => JSON.parse(row.body) as AuditRecord);
  const last = events[events.length - 1];
  return { events, nextCursor: result.rows.length > limit && last ? String(last.seq) : null };
}

export type ExportFormat = 'jsonl' | 'csv';

const EXPORT_PAGE = 5000;

/** Columns of the CSV export: what an auditor sorts and filters in a spreadsheet. */
export const CSV_COLUMNS = [
  'seq', 'time', 'type', 'outcome', 'issuer', 'subject', 'repository', 'kind', 'target', 'grant_id',
  'provider_ref', 'rule', 'request_id', 'client_address', 'error_code', 'error_message',
] as const;

function csvCell(value: unknown): string {
  if (value === undefined || value === null) return '';
  let text = typeof value === 'string' ? value : JSON.stringify(value);
  // A cell a spreadsheet would run as a formula is kept as text.
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function csvRow(record: AuditRecord): string {
  const values = [
    record.seq, record.time, record.type, record.outcome, record.issuer, record.subject,
    typeof record.claims?.['repository'] === 'string' ? record.claims['repository'] : undefined,
    record.kind, record.target, record.grantId, record.providerRef, record.rule, record.requestId,
    record.clientAddress, record.error?.code, record.error?.message,
  ];
  return `${values.map(csvCell).join(',')}\r\n`;
}

/**
 * Streams every event matching `filters`, page by page in log order, without
 * holding more than one page in memory. JSONL lines are the stored canonical
 * bodies byte for byte, so an unfiltered export is what `latchkey audit
 * verify` checks against a checkpoint. The export stops at the log's size when
 * it started (or `filters.size`), so it is one consistent prefix.
 */
export async function* exportAuditEvents(db: Queryable, filters: AuditFilters, format: ExportFormat): AsyncGenerator<string> {
  const sizeNow = await db.query<{ size: string }>('SELECT coalesce(max(seq) + 1, 0) AS size FROM audit_events');
  const size = Math.min(filters.size ?? Number.MAX_SAFE_INTEGER, Number(sizeNow.rows[0]?.size ?? 0));
  const bounded: AuditFilters = { ...filters, size, order: 'asc' };
  if (format === 'csv') yield `${CSV_COLUMNS.join(',')}\r\n`;
  let after = -1;
  for (;;) {
    const values: unknown[] = [];
    const conditions = whereClause(bounded, values);
    values.push(after);
    conditions.push(`seq > $${values.length}`);
    values.push(EXPORT_PAGE);
    const page = await db.query<{ seq: string; body: string }>(
      `SELECT seq, body FROM audit_events WHERE ${conditions.join(' AND ')} ORDER BY seq LIMIT $${values.length}`,
      values,
    );
    if (page.rows.length === 0) return;
    let chunk = '';
    for (const row of page.rows) chunk += format === 'jsonl' ? `${row.body}\n` : csvRow(JSON.parse(row.body) as AuditRecord);
    yield chunk;
    after = Number((page.rows[page.rows.length - 1] as { seq: string }).seq);
    if (page.rows.length < EXPORT_PAGE) return;
  }
}
