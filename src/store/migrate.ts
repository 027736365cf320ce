import { SchemaTooNew } from '../errors.js';
import type { Database } from './database.js';
import { migrations as allMigrations, type Migration } from './migrations/index.js';

const MIGRATION_LOCK = 0x6c6b_0001; // "lk" + 1: one replica migrates at a time

/**
 * Brings the schema up to this build's version, in one transaction per
 * migration, under an advisory lock so replicas starting together do not race.
 * Refuses a database whose schema is newer than the code.
 */
export async function migrate(db: Database, migrations: readonly Migration[] = allMigrations): Promise<{ applied: number[]; version: number }> {
  const latest = Math.max(0, ...migrations.map((m) => m.version));
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    // CREATE TABLE IF NOT EXISTS needs CREATE on the schema even when the table exists:
    // look first, so a runtime role without DDL rights (deploy/runtime-role.sql) starts on a migrated database.
    const table = await tx.query<{ found: string | null }>("SELECT to_regclass('latchkey_migrations')::text AS found");
    if (!table.rows[0]?.found) {
      await tx.query(`CREATE TABLE latchkey_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    }
    const done = await tx.query<{ version: number }>('SELECT version FROM latchkey_migrations ORDER BY version');
    const applied = new Set(done.rows.map((r) => r.version));
    const newest = Math.max(0, ...applied);
    if (newest > latest) {
      throw new SchemaTooNew(
        `the database schema is at version ${newest}, newer than this latchkey (knows up to ${latest}); upgrade latchkey or use another database`,
      );
    }
    const ran: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (applied.has(m.version)) continue;
      await tx.query(m.sql);
      await tx.query('INSERT INTO latchkey_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      ran.push(m.version);
    }
    return { applied: ran, version: latest };
  });
}
