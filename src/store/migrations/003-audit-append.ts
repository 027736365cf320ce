import type { Migration } from './index.js';

/**
 * One statement per audit batch: the broker sends the rows it built against
 * the head it believes in; under the append lock the function checks that
 * head and inserts, or answers the real head so the broker rebuilds the
 * batch (another replica appended meanwhile). Autocommit: one round trip.
 */
export const auditAppend: Migration = {
  version: 3,
  name: 'audit: append a batch in one round trip',
  sql: `
CREATE FUNCTION latchkey_append_audit(
  expected_next bigint, lock_timeout_ms integer,
  seqs bigint[], times timestamptz[], types text[], outcomes text[], request_ids text[], issuers text[], subjects text[],
  repositories text[], kinds text[], targets text[], grant_ids uuid[], provider_refs text[], bodies text[], hashes bytea[])
RETURNS TABLE (appended boolean, head_seq bigint, head_hash bytea)
LANGUAGE plpgsql AS $$
DECLARE
  current_seq bigint;
  current_hash bytea;
BEGIN
  PERFORM set_config('lock_timeout', lock_timeout_ms::text, true);
  PERFORM pg_advisory_xact_lock(${0x6c6b_0002}); -- the append lock: one writer at a time across replicas
  SELECT e.seq, e.leaf_hash INTO current_seq, current_hash FROM audit_events e ORDER BY e.seq DESC LIMIT 1;
  IF coalesce(current_seq + 1, 0) <> expected_next THEN
    RETURN QUERY SELECT false, current_seq, current_hash;
    RETURN;
  END IF;
  INSERT INTO audit_events (seq, time, type, outcome, request_id, issuer, subject, repository, kind, target, grant_id, provider_ref, body, leaf_hash)
    SELECT * FROM unnest(seqs, times, types, outcomes, request_ids, issuers, subjects, repositories, kinds, targets, grant_ids, provider_refs, bodies, hashes);
  RETURN QUERY SELECT true, NULL::bigint, NULL::bytea;
END $$;
`,
};
