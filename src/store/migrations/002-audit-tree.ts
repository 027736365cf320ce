import type { Migration } from './index.js';

export const auditTree: Migration = {
  version: 2,
  name: 'audit: signed checkpoints, filter indexes',
  sql: `
-- Every signed checkpoint of the audit Merkle tree, one per tree size.
CREATE TABLE audit_checkpoints (
  tree_size  bigint PRIMARY KEY CHECK (tree_size >= 0),
  root_hash  bytea NOT NULL CHECK (length(root_hash) = 32),
  origin     text NOT NULL,
  key_name   text NOT NULL,
  signed_at  timestamptz NOT NULL,
  -- The whole signed note (C2SP checkpoint), exactly as signed.
  note       text NOT NULL
);
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
  FOR EACH ROW EXECUTE FUNCTION latchkey_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION latchkey_refuse_change();

-- The leaf index is the sequence: dense from 0, never negative.
ALTER TABLE audit_events ADD CONSTRAINT audit_events_seq_nonnegative CHECK (seq >= 0);

-- Auditor filters walk the log in order: (column, seq) lets each page be one index range.
CREATE INDEX audit_events_issuer ON audit_events (issuer, seq);
CREATE INDEX audit_events_repository ON audit_events (repository, seq);
CREATE INDEX audit_events_target ON audit_events (target, seq);
CREATE INDEX audit_events_grant_seq ON audit_events (grant_id, seq);
CREATE INDEX audit_events_provider_ref_seq ON audit_events (provider_ref, seq);
`,
};
