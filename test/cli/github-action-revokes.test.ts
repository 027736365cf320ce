import { execFile, spawn } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readFileCommands } from '../../src/cli/github-actions.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { runProcess, type CliResult } from '../support/cli.js';
import { createDemoDatabase } from '../support/database.js';
import { actionStepEnv, ciWarehouseAndMesh, stepFiles } from '../support/github-job.js';
import { startGitHubTokenService } from '../providers/aws/support.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

/**
 * Runs the action's main step as the runner does (`node action/main.js` with
 * INPUT_*, file commands and the token service), except that the step's log
 * and `$GITHUB_ENV` are one file opened for appending by both: the order of
 * its lines is then the order the step wrote them in, so "masked before it
 * reached a file" can be read off it instead of guessed from two streams.
 */
async function runMainStepLoggingInto(logAndEnv: string, env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const log = openSync(logAndEnv, 'a');
  try {
    const child = spawn(process.execPath, [join(ROOT, 'action/main.js')], {
      env: { PATH: process.env['PATH'] ?? '', ...env, GITHUB_ENV: logAndEnv },
      cwd: ROOT,
      stdio: ['ignore', log, 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    }).finally(() => clearTimeout(timer));
    return { code, stderr };
  } finally {
    closeSync(log);
  }
}

/** Runs the post step as the runner does: `node action/post.js` with the job's env and STATE_<name> for each saved value. */
function runPostStep(env: Record<string, string>, state: Record<string, string>): Promise<CliResult> {
  const stateEnv = Object.fromEntries(Object.entries(state).map(([name, value]) => [`STATE_${name}`, value]));
  return runProcess(process.execPath, [join(ROOT, 'action/post.js')], { env: { PATH: process.env['PATH'] ?? '', ...env, ...stateEnv }, cwd: ROOT, timeoutMs: 60_000 });
}

/** `NAME<<DELIMITER` blocks of a file command file, wherever they sit among log lines. */
function fileCommandBlocks(text: string): { entries: Record<string, string>; rest: string } {
  const block = /^([A-Za-z_][A-Za-z0-9_-]*)<<(\S+)\n[\s\S]*?\n\2\n/gm;
  const entries = readFileCommands((text.match(block) ?? []).join(''));
  return { entries, rest: text.replace(block, '') };
}

/** The line of `text` holding the first occurrence of `secret`. */
function lineOfFirstOccurrence(text: string, secret: string): string | undefined {
  const at = text.indexOf(secret);
  if (at < 0) return undefined;
  return text.slice(text.lastIndexOf('\n', at) + 1, text.indexOf('\n', at));
}

/** A certificate serial as lower-case hex without leading zeros, however it was written. */
function serialKey(hex: string): string {
  return BigInt(`0x${hex}`).toString(16);
}

/** Serials on a DER CRL, as `openssl crl -text` lists them (see serialKey). */
async function serialsOnCrl(der: Buffer, dir: string, caFile: string): Promise<{ serials: string[]; verify: string }> {
  const file = join(dir, `crl-${randomBytes(4).toString('hex')}.der`);
  writeFileSync(file, der);
  const text = await run('openssl', ['crl', '-inform', 'DER', '-in', file, '-noout', '-text']);
  // Proves the CRL is signed by the CA that issued the job's certificate (exit 0, "verify OK" on stderr).
  const verified = await run('openssl', ['crl', '-inform', 'DER', '-in', file, '-noout', '-CAfile', caFile]);
  const serials = [...text.stdout.matchAll(/Serial Number: ([0-9A-Fa-f]+)/g)].map((m) => serialKey(m[1]!));
  return { serials, verify: verified.stderr + verified.stdout };
}

describe('the latchkey GitHub Action with PostgreSQL and a certificate', () => {
  const tag = randomBytes(4).toString('hex');
  const database = `lkghr_${tag}`;
  const adminUrlEnv = `LK_GHR_PG_${tag}`;
  let t: TestBroker;
  let tokens: Awaited<ReturnType<typeof startGitHubTokenService>>;
  let dir: string;
  let jobEnv: Record<string, string>;
  let main: { code: number | null; stderr: string; log: string; env: Record<string, string>; outputs: Record<string, string>; state: Record<string, string> };

  beforeAll(async () => {
    await createDemoDatabase(database, adminUrlEnv);
    t = await startTestBroker({ configure: (gh) => ciWarehouseAndMesh(gh, { database, adminUrlEnv, markerRole: `lkm_ghr_${tag}` }) });
    tokens = await startGitHubTokenService((audience) => t.issuer.githubToken({ aud: audience }));
    dir = mkdtempSync(join(tmpdir(), 'latchkey-action-revokes-'));

    // The step's log and $GITHUB_ENV are one file here (see runMainStepLoggingInto).
    const files = { ...stepFiles(dir, 'step'), GITHUB_ENV: join(dir, 'job.log+env') };
    writeFileSync(files.GITHUB_ENV, '');
    jobEnv = actionStepEnv({
      dir,
      files,
      tokens,
      broker: { url: t.url, audience: t.issuer.audience },
      inputs: {
        'INPUT_POSTGRES-TARGET': 'warehouse',
        'INPUT_POSTGRES-DATABASE': database,
        'INPUT_POSTGRES-TABLES': 'demo.orders',
        'INPUT_CERTIFICATE-TARGET': 'mesh',
        'INPUT_CERTIFICATE-OUTPUT-DIR': join(dir, 'cert'),
      },
    });
    const { code, stderr } = await runMainStepLoggingInto(files.GITHUB_ENV, jobEnv);
    const log = readFileSync(files.GITHUB_ENV, 'utf8');
    main = {
      code,
      stderr,
      log,
      env: fileCommandBlocks(log).entries,
      outputs: readFileCommands(readFileSync(files.GITHUB_OUTPUT, 'utf8')),
      state: readFileCommands(readFileSync(files.GITHUB_STATE, 'utf8')),
    };
  });
  afterAll(async () => {
    await tokens?.close();
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function loginConfig(): pg.ClientConfig {
    return { host: main.env['PGHOST']!, port: Number(main.env['PGPORT']), database: main.env['PGDATABASE']!, user: main.env['PGUSER']!, password: main.env['PGPASSWORD']! };
  }

  async function adminQuery<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<R[]> {
    const admin = new pg.Client({ connectionString: inject('postgresUrl') });
    await admin.connect();
    try {
      return (await admin.query<R>(sql, params)).rows;
    } finally {
      await admin.end();
    }
  }

  async function grantStatus(id: string): Promise<string> {
    const answer = await t.call('GET', `/v1/grants/${id}`, { token: await t.issuer.githubToken() });
    expect(answer.status).toBe(200);
    return answer.body.status;
  }

  async function crl(): Promise<{ serials: string[]; verify: string }> {
    const res = await fetch(`${t.url}/v1/ca/crl?target=mesh`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/pkix-crl');
    return serialsOnCrl(Buffer.from(await res.arrayBuffer()), dir, join(main.outputs['certificate-dir']!, 'ca.crt'));
  }

  it('the main step hands the job a PostgreSQL login and a certificate, every secret masked before it reaches a file', () => {
    expect(main.stderr).toBe('');
    expect(main.code).toBe(0);
    expect(main.outputs['postgres-grant-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(main.outputs['certificate-grant-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(main.outputs['postgres-url']).toMatch(/^postgres(ql)?:\/\//);
    expect(main.outputs['certificate-dir']).toBe(join(dir, 'cert'));
    expect(Object.keys(main.env)).toEqual(expect.arrayContaining(['PGHOST', 'PGPORT', 'PGDATABASE', 'PGUSER', 'PGPASSWORD']));
    expect(main.env['PGDATABASE']).toBe(database);

    const certDir = main.outputs['certificate-dir']!;
    const key = readFileSync(join(certDir, 'tls.key'), 'utf8');
    expect(statSync(join(certDir, 'tls.key')).mode & 0o777).toBe(0o600);
    const leaf = new X509Certificate(readFileSync(join(certDir, 'tls.crt')));
    expect(leaf.checkIssued(new X509Certificate(readFileSync(join(certDir, 'ca.crt'))))).toBe(true);
    expect(serialKey(leaf.serialNumber)).toBe(serialKey(main.outputs['certificate-serial']!));

    const keyLines = key.split('\n').filter((l) => l.trim() && !l.startsWith('-----'));
    const secrets = [main.env['PGPASSWORD']!, main.outputs['postgres-url']!, ...keyLines];
    const { rest: logLines } = fileCommandBlocks(main.log);
    for (const secret of secrets) {
      expect(main.log).toContain(`::add-mask::${secret}\n`);
      // The first time the secret is in the log+env file, it is inside a mask command: nothing reached $GITHUB_ENV before it.
      expect(lineOfFirstOccurrence(main.log, secret)).toMatch(/^::add-mask::/);
      // Outside $GITHUB_ENV's entries, the log shows the secret only inside mask commands.
      expect(logLines.split('\n').filter((line) => line.includes(secret) && !line.startsWith('::add-mask::'))).toEqual([]);
    }
    expect(readFileSync(jobEnv['GITHUB_OUTPUT']!, 'utf8')).not.toContain(keyLines[0]!);

    // What the runner will give the post step as STATE_<name>.
    expect(main.state).toEqual({ grant_ids: `${main.outputs['postgres-grant-id']} ${main.outputs['certificate-grant-id']}`, broker_url: t.url, audience: t.issuer.audience });
  });

  it('before the post step the login reads the allowed table only, and the certificate is on no CRL', async () => {
    const client = new pg.Client(loginConfig());
    await client.connect();
    try {
      expect((await client.query('SELECT count(*)::int AS n FROM demo.orders')).rows[0].n).toBeGreaterThan(0);
      await expect(client.query('SELECT count(*) FROM demo.customers')).rejects.toMatchObject({ code: '42501' });
    } finally {
      await client.end();
    }
    expect(await grantStatus(main.outputs['postgres-grant-id']!)).toBe('active');
    expect(await grantStatus(main.outputs['certificate-grant-id']!)).toBe('active');
    expect((await crl()).serials).not.toContain(serialKey(main.outputs['certificate-serial']!));
  });

  it('the post step, fed the saved state as STATE_*, drops the login and its open session and puts the certificate on the CRL', async () => {
    const user = main.env['PGUSER']!;
    // A session the job left open: revoking must end it, not only refuse new logins.
    const open = new pg.Client(loginConfig());
    open.on('error', () => {}); // the server terminating it arrives as an error event
    await open.connect();
    try {
      await open.query('SELECT 1');

      const post = await runPostStep(jobEnv, main.state);
      expect(post.stderr).toBe('');
      expect(post.code).toBe(0);
      expect(post.stdout).not.toContain('::warning');
      expect(post.stdout).toContain(`grant ${main.outputs['postgres-grant-id']}: revoked`);
      expect(post.stdout).toContain(`grant ${main.outputs['certificate-grant-id']}: revoked`);

      await expect(open.query('SELECT count(*) FROM demo.orders')).rejects.toThrow();
    } finally {
      await open.end().catch(() => {});
    }
    // 28000 (role does not exist) or 28P01 (password authentication failed): the login is gone either way.
    const again = new pg.Client(loginConfig());
    await expect(again.connect()).rejects.toMatchObject({ code: expect.stringMatching(/^28/) });
    await again.end().catch(() => {});
    expect(await adminQuery('SELECT 1 FROM pg_roles WHERE rolname = $1', [user])).toEqual([]);

    const list = await crl();
    expect(list.verify).toContain('verify OK');
    expect(list.serials).toContain(serialKey(main.outputs['certificate-serial']!));

    expect(await grantStatus(main.outputs['postgres-grant-id']!)).toBe('revoked');
    expect(await grantStatus(main.outputs['certificate-grant-id']!)).toBe('revoked');
  }, 60_000);
});
