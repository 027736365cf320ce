import type { Migration } from './index.js';

/**
 * A grant that waits for approval keeps the lifetime its credential will have:
 * its `expires_at` is the end of the approval window, and the credential's
 * clock starts when the requester claims it.
 */
export const grantTtl: Migration = {
  version: 5,
  name: 'grants: ttl_seconds, the credential lifetime of a grant waiting for approval',
  sql: `
ALTER TABLE grants ADD COLUMN ttl_seconds integer CHECK (ttl_seconds > 0);
`,
};
