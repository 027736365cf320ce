-- The privileges of latchkey_runtime, the role the broker replicas connect
-- as: exactly what the broker's queries need, and no DDL.
--
-- Run it as the OWNER role (the one that ran the migrations, owns the tables
-- and owns the database), after the migrations, and again after every
-- upgrade that adds one. It is idempotent. deploy/README.md ("Database roles")
-- creates both roles; in short, as an administrator:
--
--   CREATE ROLE latchkey_owner LOGIN;      -- migrations; its URL is used only by the migration step
--   CREATE ROLE latchkey_runtime LOGIN;    -- the broker's DATABASE_URL
--   CREATE DATABASE latchkey OWNER latchkey_owner;
--
-- then, after `latchkey migrate` (or one start as the owner):
--
--   psql "$LATCHKEY_OWNER_URL" -v ON_ERROR_STOP=1 -f deploy/runtime-role.sql
--
-- test/deploy/runtime-role.test.ts runs this file against a migrated
-- database, runs a broker as the runtime role, and fails when a table of the
-- schema has no grant here. To use other role names, replace them throughout.

-- Nobody but the roles named below connects; nobody creates objects in public.
DO $$
BEGIN
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO latchkey_runtime', current_database());
END $$;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO latchkey_runtime;

-- A clean slate on every table, then exactly what the broker needs.
REVOKE ALL ON latchkey_migrations, grants, used_token_ids, audit_events, audit_checkpoints FROM latchkey_runtime;

-- Start-up reads the schema version and refuses a database newer than itself.
GRANT SELECT ON latchkey_migrations TO latchkey_runtime;

-- The grant lifecycle: new records, status changes, and the sweeper's
-- SELECT ... FOR UPDATE (which PostgreSQL allows only with UPDATE). Never DELETE.
GRANT SELECT, INSERT, UPDATE ON grants TO latchkey_runtime;

-- Single-use jti: INSERT ... ON CONFLICT DO UPDATE takes over a row whose
-- token has expired; expired rows are purged.
GRANT SELECT, INSERT, UPDATE, DELETE ON used_token_ids TO latchkey_runtime;

-- The audit log and its signed checkpoints: append and read, nothing else.
-- Triggers also refuse UPDATE, DELETE and TRUNCATE whatever the role; without
-- the privilege the runtime role is stopped before it reaches them, and it
-- cannot drop the triggers (only the tables' owner can).
GRANT SELECT, INSERT ON audit_events TO latchkey_runtime;
GRANT SELECT, INSERT ON audit_checkpoints TO latchkey_runtime;
