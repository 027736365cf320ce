import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestBroker } from '../support/broker.js';
import { LATCHKEY_BIN, runProcess } from '../support/cli.js';
import type { LocalSts, StsCredentials } from '../support/sts-server.js';
import { startAwsBroker } from '../providers/aws/support.js';

// Debian's awscli (v2); a pip-installed v1 elsewhere on PATH would do too, but CI installs this one.
const AWS_CLI = ['/usr/bin/aws', '/usr/local/bin/aws'].find((p) => existsSync(p));

// .ci/run installs the AWS CLI: there, a missing one is a broken CI, not a reason to skip.
if (!AWS_CLI && process.env['LATCHKEY_CI']) {
  throw new Error('LATCHKEY_CI is set but the AWS CLI is not installed at /usr/bin/aws: .ci/run should have installed Debian\'s awscli');
}

function runAws(args: string[], env: Record<string, string>) {
  return runProcess(AWS_CLI!, args, { env, timeoutMs: 60_000 });
}

describe.skipIf(!AWS_CLI)('the AWS CLI with credential_process = latchkey credential-process', () => {
  let sts: LocalSts;
  let broker: StsCredentials;
  let t: TestBroker;
  let home: string;

  beforeAll(async () => {
    ({ sts, broker, t } = await startAwsBroker());
    home = mkdtempSync(join(tmpdir(), 'latchkey-awscli-'));
    writeFileSync(
      join(home, 'config'),
      [
        '[profile latchkey-deploy]',
        'region = eu-west-1',
        `credential_process = "${process.execPath}" "${LATCHKEY_BIN}" credential-process --url ${t.url} --target prod-aws --role deploy`,
        '',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    await t?.close();
    await sts?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  /** The environment of a laptop shell: no AWS keys, only the profile file. */
  function shellEnv(extra: Record<string, string>): Record<string, string> {
    return {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: home,
      AWS_CONFIG_FILE: join(home, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: join(home, 'credentials-none'),
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_PAGER: '',
      ...extra,
    };
  }

  it('aws sts get-caller-identity succeeds as the assumed role, proving the AWS CLI consumed the output', async () => {
    const token = await t.issuer.githubToken();
    const result = await runAws(['sts', 'get-caller-identity', '--profile', 'latchkey-deploy', '--endpoint-url', sts.url, '--output', 'json'], shellEnv({ LATCHKEY_TOKEN: token }));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const identity = JSON.parse(result.stdout);
    expect(identity.Account).toBe('123456789012');
    expect(identity.Arn).toBe(`arn:aws:sts::123456789012:assumed-role/deploy/${sts.assumeRoleCalls.at(-1)!.RoleSessionName}`);
    // The local STS answers GetCallerIdentity only for credentials it issued, checked by signature.
    expect(sts.requests.filter((r) => r.action === 'GetCallerIdentity')).toEqual([{ action: 'GetCallerIdentity', status: 200 }]);
  });

  it("a refused grant reaches the AWS CLI user as latchkey's message and a failed command", async () => {
    const result = await runAws(['sts', 'get-caller-identity', '--profile', 'latchkey-deploy', '--endpoint-url', sts.url], shellEnv({ LATCHKEY_TOKEN: await t.issuer.githubToken({ environment: 'staging' }) }));
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('policy_denied');
  });
});
