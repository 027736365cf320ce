import type { Migration } from './index.js';

export const core: Migration = {
  version: 1,
  name: 'core: grants, used token ids, audit events',
  sql: `
CREATE TABLE grants (
  id              uuid PRIMARY KEY,
  status          text NOT NULL CHECK (status IN ('pending_approval','approved','issuing','active','revoking','revoked','expired','failed','denied')),
  issuer          text NOT NULL,
  subject         text NOT NULL,
  claims          jsonb NOT NULL,
  rule            text NOT NULL,
  policy_hash     text NOT NULL,
  kind            text NOT NULL,
  target          text NOT NULL,
  scope           jsonb NOT NULL,
  reason          text,
  request_id      text NOT NULL,
  created_at      timestamptz NOT NULL,
  issued_at       timestamptz,
  expires_at      timestamptz NOT NULL,
  revoked_at      timestamptz,
  revoked_by      text,
  end_reason      text,
  approved_by     text,
  approved_at     timestamptz,
  provider_ref    text,
  revoke_on_expiry boolean NOT NULL DEFAULT false,
  revoke_attempts integer NOT NULL DEFAULT 0,
  revoke_error    text,
  next_attempt_at timestamptz
);
CREATE INDEX grants_subject ON grants (issuer, subject, created_at);
CREATE INDEX grants_due ON grants (expires_at) WHERE status IN ('active', 'revoking');
CREATE INDEX grants_provider_ref ON grants (kind, target, provider_ref);

CREATE TABLE used_token_ids (
  issuer     text NOT NULL,
  jti        text NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (issuer, jti)
);
CREATE INDEX used_token_ids_expiry ON used_token_ids (expires_at);

CREATE TABLE audit_events (
  seq          bigint PRIMARY KEY,
  time         timestamptz NOT NULL,
  type         text NOT NULL,
  outcome      text NOT NULL,
  request_id   text,
  issuer       text,
  subject      text,
  repository   text,
  kind         text,
  target       text,
  grant_id     uuid,
  provider_ref text,
  body         text NOT NULL,
  leaf_hash    bytea NOT NULL
);
CREATE INDEX audit_events_time ON audit_events (time);
CREATE INDEX audit_events_subject ON audit_events (subject, seq);
CREATE INDEX audit_events_grant ON audit_events (grant_id);
CREATE INDEX audit_events_provider_ref ON audit_events (provider_ref);

-- Append-only, whatever role writes: the broker's own role included.
CREATE FUNCTION latchkey_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'latchkey: % on % is refused: the audit log is append-only', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION latchkey_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION latchkey_refuse_change();
`,
};
