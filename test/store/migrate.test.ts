import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Database } from '../../src/store/database.js';
import { migrate } from '../../src/store/migrate.js';
import { createTestDatabase } from '../support/database.js';

describe('schema migrations', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Database;
  beforeAll(async () => {
    t = await createTestDatabase();
    db = new Database(t.url, 2);
  });
  afterAll(async () => {
    await db.close();
    await t.drop();
  });

  it('applies every migration once and records it', async () => {
    const first = await migrate(db);
    expect(first.applied.length).toBeGreaterThan(0);
    const second = await migrate(db);
    expect(second.applied).toEqual([]);
    const rows = await db.query('SELECT version FROM latchkey_migrations');
    expect(rows.rowCount).toBe(first.applied.length);
  });

  it('refuses a database whose schema is newer than the code', async () => {
    await db.query("INSERT INTO latchkey_migrations (version, name) VALUES (9999, 'from the future')");
    await expect(migrate(db)).rejects.toMatchObject({ code: 'schema_too_new' });
    await db.query('DELETE FROM latchkey_migrations WHERE version = 9999');
  });

  it('refuses UPDATE, DELETE and TRUNCATE on audit events, whatever the role', async () => {
    await db.query(`INSERT INTO audit_events (seq, time, type, outcome, body, leaf_hash) VALUES (0, now(), 'grant.denied', 'denied', '{}', '\\x00')`);
    await expect(db.query("UPDATE audit_events SET outcome = 'success'")).rejects.toThrow(/append-only/);
    await expect(db.query('DELETE FROM audit_events')).rejects.toThrow(/append-only/);
    await expect(db.query('TRUNCATE audit_events')).rejects.toThrow(/append-only/);
    const rows = await db.query('SELECT outcome FROM audit_events');
    expect(rows.rows).toEqual([{ outcome: 'denied' }]);
  });
});
