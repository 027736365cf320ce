import type { Migration } from './index.js';

/**
 * 002 added (grant_id, seq) and (provider_ref, seq) for the auditor's paged
 * queries; they serve every lookup the single-column indexes of 001 served, so
 * those only cost two more index writes per audit event.
 */
export const auditRedundantIndexes: Migration = {
  version: 4,
  name: 'audit: drop the indexes (grant_id, seq) and (provider_ref, seq) make redundant',
  sql: `
DROP INDEX IF EXISTS audit_events_grant;
DROP INDEX IF EXISTS audit_events_provider_ref;
`,
};
