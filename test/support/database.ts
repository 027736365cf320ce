import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { Database } from '../../src/store/database.js';
import { migrate } from '../../src/store/migrate.js';
import { seedDemoSchema } from '../../src/providers/postgres/demo.js';

/** A fresh, empty database in the suite's shared cluster. */
export async function createTestDatabase(prefix = 't'): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const admin = inject('postgresUrl');
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  const url = admin.replace(/\/postgres$/, `/${name}`);
  return {
    url,
    name,
    async drop() {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A fresh database with latchkey's schema applied, and a Database on it. */
export async function createMigratedDatabase(): Promise<{ db: Database; url: string; drop(): Promise<void> }> {
  const t = await createTestDatabase('lk');
  const db = new Database(t.url, 5);
  await migrate(db);
  return {
    db,
    url: t.url,
    async drop() {
      await db.close();
      await t.drop();
    },
  };
}

/**
 * Database `name` with the demo schema (demo.orders, demo.customers,
 * demo.payments) in the shared cluster, and `adminUrlEnv` set to the
 * cluster's superuser URL, as a postgres target's `admin_url_env` reads it.
 */
export async function createDemoDatabase(name: string, adminUrlEnv: string): Promise<void> {
  const admin = inject('postgresUrl');
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  await seedDemoSchema(admin.replace(/\/postgres$/, `/${name}`));
  process.env[adminUrlEnv] = admin;
}
