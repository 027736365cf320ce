import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { appendGitHubEnv, fetchGitHubActionsToken, maskSecret, readFileCommands } from '../../src/cli/github-actions.js';
import type { CliIO } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import type { TestBroker } from '../support/broker.js';
import type { LocalSts, StsCredentials } from '../support/sts-server.js';
import { startGitHubTokenService, startAwsBroker } from '../providers/aws/support.js';

let sts: LocalSts;
let broker: StsCredentials;
let t: TestBroker;
let tokens: Awaited<ReturnType<typeof startGitHubTokenService>>;
let dir: string;

beforeAll(async () => {
  ({ sts, broker, t } = await startAwsBroker());
  tokens = await startGitHubTokenService((audience) => t.issuer.githubToken({ aud: audience }));
  dir = mkdtempSync(join(tmpdir(), 'latchkey-gha-'));
});
afterAll(async () => {
  await tokens?.close();
  await t?.close();
  await sts?.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  sts.reset();
  tokens.requests.length = 0;
});

/** A job's environment: runner token service, fresh GITHUB_ENV/GITHUB_OUTPUT files. */
function jobEnv(name: string): Record<string, string> {
  const env = join(dir, `${name}.env`);
  const output = join(dir, `${name}.output`);
  writeFileSync(env, '');
  writeFileSync(output, '');
  return {
    GITHUB_ACTIONS: 'true',
    ACTIONS_ID_TOKEN_REQUEST_URL: tokens.url,
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: tokens.requestToken,
    GITHUB_ENV: env,
    GITHUB_OUTPUT: output,
    LATCHKEY_AUDIENCE: t.issuer.audience,
  };
}

/** A CliIO that, at every stdout write, notes what GITHUB_ENV and GITHUB_OUTPUT held at that moment. */
function recordingIO(env: Record<string, string>) {
  const writes: { text: string; filesThen: string }[] = [];
  let stderr = '';
  const io: CliIO = {
    stdout: { write: (text: string) => writes.push({ text, filesThen: readFileSync(env['GITHUB_ENV']!, 'utf8') + readFileSync(env['GITHUB_OUTPUT']!, 'utf8') }) },
    stderr: { write: (text: string) => (stderr += text) },
    env,
    cwd: process.cwd(),
  };
  return { io, writes, stderr: () => stderr };
}

describe('latchkey grant aws --format github', () => {
  it("fetches the job's OIDC token for the configured audience from the runner", async () => {
    const env = jobEnv('token');
    const { io, stderr } = recordingIO(env);
    const code = await main(['grant', 'aws', '--url', t.url, '--target', 'prod-aws', '--role', 'deploy', '--format', 'github'], io);
    expect(stderr()).toBe('');
    expect(code).toBe(0);
    expect(tokens.requests).toEqual([{ audience: t.issuer.audience, authorization: `bearer ${tokens.requestToken}`, apiVersion: '2.0' }]);
  });

  it('masks every secret before writing it to GITHUB_ENV and GITHUB_OUTPUT', async () => {
    const env = jobEnv('mask');
    const { io, writes } = recordingIO(env);
    expect(await main(['grant', 'aws', '--url', t.url, '--target', 'prod-aws', '--role', 'deploy', '--format', 'github'], io)).toBe(0);

    const jobEnvironment = readFileCommands(readFileSync(env['GITHUB_ENV']!, 'utf8'));
    const outputs = readFileCommands(readFileSync(env['GITHUB_OUTPUT']!, 'utf8'));
    const secrets = [jobEnvironment['AWS_ACCESS_KEY_ID']!, jobEnvironment['AWS_SECRET_ACCESS_KEY']!, jobEnvironment['AWS_SESSION_TOKEN']!];
    const issued = sts.issued(secrets[0]!)!;
    expect(secrets).toEqual([issued.accessKeyId, issued.secretAccessKey, issued.sessionToken]);
    expect(jobEnvironment['AWS_REGION']).toBe('eu-west-1');
    expect(outputs).toMatchObject({
      'aws-access-key-id': issued.accessKeyId,
      'aws-secret-access-key': issued.secretAccessKey,
      'aws-session-token': issued.sessionToken,
      'aws-assumed-role-arn': issued.assumedRoleArn,
    });
    expect(outputs['aws-grant-id']).toMatch(/\S/);

    for (const secret of secrets) {
      const mask = writes.findIndex((w) => w.text === `::add-mask::${secret}\n`);
      expect(mask, `a mask for ${secret.slice(0, 4)}...`).toBeGreaterThanOrEqual(0);
      // When the runner was told to hide it, the secret was in neither file yet.
      expect(writes[mask]!.filesThen).not.toContain(secret);
    }
    // Nothing on stdout shows a secret except inside its mask command.
    for (const w of writes.filter((w) => !w.text.startsWith('::add-mask::'))) for (const s of secrets) expect(w.text).not.toContain(s);
  });

  it('without id-token permission it says what the job lacks', async () => {
    const env = jobEnv('noperm');
    delete env['ACTIONS_ID_TOKEN_REQUEST_URL'];
    delete env['ACTIONS_ID_TOKEN_REQUEST_TOKEN'];
    const { io, stderr } = recordingIO(env);
    expect(await main(['grant', 'aws', '--url', t.url, '--target', 'prod-aws', '--role', 'deploy', '--format', 'github'], io)).not.toBe(0);
    expect(stderr()).toContain('id-token: write');
    expect(readFileSync(env['GITHUB_ENV']!, 'utf8')).toBe('');
  });

  it('a runner that refuses the request token fails the step with its answer', async () => {
    const env = { ...jobEnv('badtoken'), ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'wrong' };
    await expect(fetchGitHubActionsToken(env, 'latchkey')).rejects.toThrow(/answered 401/);
  });
});

describe('GitHub workflow commands', () => {
  it('masks each line of a multi-line secret, escaped as workflow commands are', () => {
    let out = '';
    maskSecret('line one\n50%\r\nthird', { stdout: { write: (t: string) => (out += t) } });
    expect(out).toBe('::add-mask::line one\n::add-mask::50%25\n::add-mask::third\n');
  });

  it('writes multi-line values with a delimiter the runner reads back intact', async () => {
    const file = join(dir, 'multiline.env');
    writeFileSync(file, 'EARLIER=1\n');
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----';
    await appendGitHubEnv({ GITHUB_ENV: file }, { CERT: pem, EMPTY: '', EQUALS: 'a=b' });
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/^CERT<<ghadelimiter_[0-9a-f-]+\n-----BEGIN/m);
    expect(readFileCommands(text)).toEqual({ EARLIER: '1', CERT: pem, EMPTY: '', EQUALS: 'a=b' });
  });
});
