import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileCommands } from '../../src/cli/github-actions.js';
import type { CliIO } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { createDemoDatabase } from '../support/database.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { ciWarehouseAndMesh } from '../support/github-job.js';

// `--format github` for PostgreSQL logins and certificates, as action.yml's main step runs them.
describe('grant postgres and grant cert inside GitHub Actions', () => {
  const tag = randomBytes(4).toString('hex');
  const database = `lkgha_${tag}`;
  const envVar = `LK_GHA_PG_${tag}`;
  let t: TestBroker;
  let dir: string;

  beforeAll(async () => {
    await createDemoDatabase(database, envVar);
    dir = mkdtempSync(join(tmpdir(), 'latchkey-gha-pg-'));
    t = await startTestBroker({ configure: (gh) => ciWarehouseAndMesh(gh, { database, adminUrlEnv: envVar, markerRole: `lkm_gha_${tag}` }) });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function job(name: string, args: string[]) {
    const files = { GITHUB_ENV: join(dir, `${name}.env`), GITHUB_OUTPUT: join(dir, `${name}.out`) };
    writeFileSync(files.GITHUB_ENV, '');
    writeFileSync(files.GITHUB_OUTPUT, '');
    const writes: { text: string; filesThen: string }[] = [];
    let stderr = '';
    const io: CliIO = {
      stdout: { write: (text: string) => writes.push({ text, filesThen: readFileSync(files.GITHUB_ENV, 'utf8') + readFileSync(files.GITHUB_OUTPUT, 'utf8') }) },
      stderr: { write: (text: string) => (stderr += text) },
      env: { ...files, GITHUB_ACTIONS: 'true', LATCHKEY_URL: t.url, LATCHKEY_TOKEN: await t.issuer.githubToken() },
      cwd: dir,
    };
    const code = await main(args, io);
    return {
      code,
      stderr,
      writes,
      env: readFileCommands(readFileSync(files.GITHUB_ENV, 'utf8')),
      outputs: readFileCommands(readFileSync(files.GITHUB_OUTPUT, 'utf8')),
    };
  }

  it('masks the password before writing PG* variables and outputs that a later step can log in with', async () => {
    const r = await job('pg', ['grant', 'postgres', '--target', 'warehouse', '--database', database, '--table', 'demo.orders', '--format', 'github']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const password = r.env['PGPASSWORD']!;
    expect(password).toBeTruthy();
    const maskAt = r.writes.findIndex((w) => w.text === `::add-mask::${password}\n`);
    expect(maskAt).toBeGreaterThanOrEqual(0);
    expect(r.writes[maskAt]!.filesThen).toBe(''); // nothing written before the mask
    expect(r.writes.filter((w) => !w.text.startsWith('::add-mask::')).map((w) => w.text).join('')).not.toContain(password);
    expect(r.outputs['postgres-grant-id']).toMatch(/^[0-9a-f-]{36}$/);
    const client = new pg.Client({ host: r.env['PGHOST'], port: Number(r.env['PGPORT']), database: r.env['PGDATABASE'], user: r.env['PGUSER'], password });
    await client.connect();
    expect((await client.query('SELECT count(*)::int AS n FROM demo.orders')).rows[0].n).toBeGreaterThan(0);
    await client.end();
  });

  it('writes the certificate files and reports the grant id and directory as outputs, key lines masked', async () => {
    const out = join(dir, 'cert');
    const r = await job('cert', ['grant', 'cert', '--target', 'mesh', '--generate', '--out', out, '--format', 'github']);
    expect(r.code).toBe(0);
    expect(r.outputs['certificate-grant-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.outputs['certificate-dir']).toBe(out);
    expect(existsSync(join(out, 'tls.key'))).toBe(true);
    const keyBody = readFileSync(join(out, 'tls.key'), 'utf8').split('\n')[1]!;
    expect(r.writes.some((w) => w.text === `::add-mask::${keyBody}\n`)).toBe(true);
  });
});
