import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { postgresKind } from '../../../src/providers/postgres/index.js';
import type { PostgresCredential } from '../../../src/providers/postgres/index.js';
import { adminQuery, setUpProviderFixture, withDatabase, type ProviderFixture } from './servers.js';

// INSERT into a table with a serial or identity column draws from its sequence.
describe('an INSERT grant on a table with generated ids', () => {
  let fx: ProviderFixture;
  beforeAll(async () => {
    fx = await setUpProviderFixture(inject('postgresUrl'));
    await adminQuery(
      withDatabase(fx.serverUrl, fx.database),
      'CREATE TABLE demo.notes (id serial PRIMARY KEY, body text NOT NULL); CREATE TABLE demo.tags (id int GENERATED ALWAYS AS IDENTITY, tag text); CREATE TABLE demo.other (id serial)',
    );
  });
  afterAll(async () => fx?.teardown());

  it('can insert rows whose ids come from the table’s own sequences, and use no other sequence', async () => {
    const allow = postgresKind.allowSchema.parse({ tables: ['demo.notes', 'demo.tags'], privileges: ['SELECT', 'INSERT'] });
    const scope = postgresKind.scopeSchema.parse({ database: fx.database, tables: ['demo.notes', 'demo.tags'], privileges: ['SELECT', 'INSERT'] });
    const now = new Date();
    const issued = await fx.provider.issue({
      grantId: randomUUID(), requestId: randomUUID(), subject: 'ci:job', issuerName: 'test', claims: {}, allow, scope,
      issuedAt: now, expiresAt: new Date(now.getTime() + 15 * 60_000),
    });
    const client = await fx.connectAs(issued.credential as unknown as PostgresCredential);
    const row = await client.query("INSERT INTO demo.notes (body) VALUES ('hello') RETURNING id");
    expect(row.rows[0].id).toBeGreaterThan(0);
    await client.query("INSERT INTO demo.tags (tag) VALUES ('x')");
    // USAGE only: the sequence cannot be reset, and another table's sequence stays out of reach.
    await expect(client.query("SELECT setval('demo.notes_id_seq', 1000)")).rejects.toMatchObject({ code: '42501' });
    await expect(client.query("SELECT nextval('demo.other_id_seq')")).rejects.toMatchObject({ code: '42501' });
  });
});
