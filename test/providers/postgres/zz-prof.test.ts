import { it } from 'vitest';
import pg from 'pg';
import { scramSha256Verifier } from '../../../src/providers/postgres/scram.js';
import { Secret } from '../../../src/secret.js';
import { LOCAL_PG15_URL } from './servers.js';

it('prof', async () => {
  let t = performance.now();
  for (let i = 0; i < 200; i++) await scramSha256Verifier(new Secret('abcdefabcdefabcdefabcdefabcdefabcdefabcdefa'));
  console.log('scram seq ms/op', (performance.now() - t) / 200);
  t = performance.now();
  await Promise.all(Array.from({ length: 200 }, () => scramSha256Verifier(new Secret('abcdefabcdefabcdefabcdefabcdefabcdefabcdefa'))));
  console.log('scram parallel ms/op', (performance.now() - t) / 200);
  const c = new pg.Client(LOCAL_PG15_URL); await c.connect();
  const v = await scramSha256Verifier(new Secret('x'));
  const phases: Record<string, number> = {};
  const time = async (k: string, f: () => Promise<unknown>) => { const s = performance.now(); await f(); phases[k] = (phases[k] ?? 0) + performance.now() - s; };
  for (let i = 0; i < 100; i++) {
    const r = `zz_prof_${i}`;
    await time('begin', () => c.query('BEGIN'));
    await time('create', () => c.query(`CREATE ROLE ${r} LOGIN NOINHERIT PASSWORD '${v}' VALID UNTIL '2030-01-01' CONNECTION LIMIT 3`));
    await time('comment', () => c.query(`COMMENT ON ROLE ${r} IS 'latchkey grant x'`));
    await time('alter', () => c.query(`ALTER ROLE ${r} SET statement_timeout = '30s'; ALTER ROLE ${r} SET default_transaction_read_only = 'on'`));
    await time('lock', () => c.query(`SELECT pg_advisory_xact_lock(1, 2)`));
    await time('grants', () => c.query(`GRANT CONNECT ON DATABASE postgres TO ${r}; GRANT USAGE ON SCHEMA public TO ${r}`));
    await time('commit', () => c.query('COMMIT'));
  }
  console.log('phases ms/op', Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, (v / 100).toFixed(2)])));
  const d = performance.now();
  for (let i = 0; i < 100; i++) await c.query(`DROP OWNED BY zz_prof_${i}; DROP ROLE zz_prof_${i}`);
  console.log('drop ms/op', (performance.now() - d) / 100);
  await c.end();
});
