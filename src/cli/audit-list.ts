import { callBroker, connectToBroker } from './client.js';
import { parseVerbArgs, type CliVerb } from './io.js';
import type { AuditRecord } from '../audit/types.js';

/** Filter flags shared by `audit list` and `audit export`: flag name -> query parameter. */
export const AUDIT_FILTER_FLAGS = {
  from: 'from', to: 'to', subject: 'subject', issuer: 'issuer', repository: 'repository', target: 'target', kind: 'kind',
  outcome: 'outcome', type: 'type', 'grant-id': 'grantId', 'aws-access-key-id': 'awsAccessKeyId', 'db-role': 'dbRole',
  'cert-serial': 'certSerial', size: 'size',
} as const;

export function filterOptions(): Record<string, { type: 'string' }> {
  return Object.fromEntries(Object.keys(AUDIT_FILTER_FLAGS).map((flag) => [flag, { type: 'string' as const }]));
}

export function filterQuery(values: Record<string, unknown>): URLSearchParams {
  const query = new URLSearchParams();
  for (const [flag, param] of Object.entries(AUDIT_FILTER_FLAGS)) {
    const value = values[flag];
    if (typeof value === 'string') query.set(param, value);
  }
  return query;
}

/** `latchkey audit list [filters] [--limit N] [--all] [--json]`: events in log order, one line each. */
export const run: CliVerb = async (args, io) => {
  const { values } = parseVerbArgs('audit list', args, {
    ...filterOptions(), limit: { type: 'string' }, all: { type: 'boolean' }, json: { type: 'boolean' }, url: { type: 'string' }, token: { type: 'string' },
  });
  const { url, token } = await connectToBroker(values, io, 'read');
  const query = filterQuery(values);
  query.set('limit', (values['limit'] as string | undefined) ?? '100');
  let cursor: string | null = null;
  do {
    if (cursor) query.set('cursor', cursor);
    const page: { events: AuditRecord[]; nextCursor: string | null } = await callBroker(url, 'GET', `/v1/audit/events?${query}`, { token });
    for (const e of page.events) {
      io.stdout.write(values['json'] ? `${JSON.stringify(e)}\n` : `${[e.seq, e.time, e.type, e.outcome, e.subject ?? '-', e.kind ?? '-', e.target ?? '-', e.grantId ?? '-', e.providerRef ?? '-'].join('\t')}\n`);
    }
    cursor = page.nextCursor;
  } while (cursor && values['all']);
  return 0;
};
