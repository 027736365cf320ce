import pg from 'pg';

/** Schema `demo` for `latchkey dev`: three related tables with a few rows each. */
const DEMO_SQL = `
CREATE SCHEMA IF NOT EXISTS demo;

CREATE TABLE IF NOT EXISTS demo.customers (
  id         integer PRIMARY KEY,
  name       text NOT NULL,
  email      text NOT NULL,
  country    text NOT NULL
);

CREATE TABLE IF NOT EXISTS demo.orders (
  id           integer PRIMARY KEY,
  customer_id  integer NOT NULL REFERENCES demo.customers (id),
  ordered_at   timestamptz NOT NULL,
  status       text NOT NULL,
  total_cents  integer NOT NULL
);

CREATE TABLE IF NOT EXISTS demo.payments (
  id           integer PRIMARY KEY,
  order_id     integer NOT NULL REFERENCES demo.orders (id),
  paid_at      timestamptz NOT NULL,
  card_last4   text NOT NULL,
  amount_cents integer NOT NULL
);

INSERT INTO demo.customers (id, name, email, country) VALUES
  (1, 'Ada Lovelace',     'ada@example.com',     'GB'),
  (2, 'Grace Hopper',     'grace@example.com',   'US'),
  (3, 'Edsger Dijkstra',  'edsger@example.com',  'NL'),
  (4, 'Barbara Liskov',   'barbara@example.com', 'US')
ON CONFLICT (id) DO NOTHING;

INSERT INTO demo.orders (id, customer_id, ordered_at, status, total_cents) VALUES
  (1001, 1, '2026-01-05 09:12:00+00', 'shipped',   4200),
  (1002, 2, '2026-01-06 14:30:00+00', 'shipped',   1999),
  (1003, 3, '2026-01-07 08:01:00+00', 'pending',  12500),
  (1004, 1, '2026-01-08 17:45:00+00', 'cancelled',  750),
  (1005, 4, '2026-01-09 11:20:00+00', 'pending',   3300)
ON CONFLICT (id) DO NOTHING;

INSERT INTO demo.payments (id, order_id, paid_at, card_last4, amount_cents) VALUES
  (501, 1001, '2026-01-05 09:13:00+00', '4242', 4200),
  (502, 1002, '2026-01-06 14:31:00+00', '1881', 1999),
  (503, 1004, '2026-01-08 17:46:00+00', '0005',  750)
ON CONFLICT (id) DO NOTHING;
`;

/**
 * Creates schema `demo` with `demo.customers`, `demo.orders` and
 * `demo.payments` and their sample rows in the database of `adminUrl`.
 * Idempotent: running it again changes nothing.
 */
export async function seedDemoSchema(adminUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl, application_name: 'latchkey' });
  await client.connect();
  try {
    await client.query(`BEGIN; ${DEMO_SQL}; COMMIT`);
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    await client.end();
  }
}
