import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import type { LocalSts, StsCredentials } from '../support/sts-server.js';
import { awsBrokerConfig, capturedIO, startAwsBroker } from '../providers/aws/support.js';

let sts: LocalSts;
let broker: StsCredentials;
let t: TestBroker;

beforeAll(async () => {
  ({ sts, broker, t } = await startAwsBroker());
});
afterAll(async () => {
  await t?.close();
  await sts?.close();
});
beforeEach(() => sts.reset());

async function grantAws(format: string, extra: string[] = [], claims: Record<string, unknown> = {}) {
  const cli = capturedIO({});
  const token = await t.issuer.githubToken(claims);
  const code = await main(['grant', 'aws', '--url', t.url, '--token', token, '--target', 'prod-aws', '--role', 'deploy', '--format', format, ...extra], cli.io);
  return { code, stdout: cli.stdout(), stderr: cli.stderr() };
}

describe('latchkey grant aws', () => {
  it('--format env prints shell exports that an AWS SDK accepts', async () => {
    const { code, stdout, stderr } = await grantAws('env');
    expect(code).toBe(0);
    const env = Object.fromEntries([...stdout.matchAll(/^export (\w+)='([^']*)'$/gm)].map((m) => [m[1], m[2]]));
    expect(Object.keys(env).sort()).toEqual(['AWS_ACCESS_KEY_ID', 'AWS_CREDENTIAL_EXPIRATION', 'AWS_DEFAULT_REGION', 'AWS_REGION', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']);
    expect(stdout.trim().split('\n')).toHaveLength(6);
    expect(stderr).toContain('assumed-role/deploy');

    const client = new STSClient({
      region: env['AWS_REGION']!,
      endpoint: sts.url,
      credentials: { accessKeyId: env['AWS_ACCESS_KEY_ID']!, secretAccessKey: env['AWS_SECRET_ACCESS_KEY']!, sessionToken: env['AWS_SESSION_TOKEN']! },
    });
    const me = await client.send(new GetCallerIdentityCommand({}));
    client.destroy();
    expect(me.Arn).toMatch(/^arn:aws:sts::123456789012:assumed-role\/deploy\//);
  });

  it('--format json prints the grant with its credential and the note that it cannot be revoked one by one', async () => {
    const { code, stdout } = await grantAws('json');
    expect(code).toBe(0);
    const body = JSON.parse(stdout);
    expect(body).toMatchObject({ status: 'active', kind: 'aws', target: 'prod-aws', rule: 'octo-repo-deploys' });
    expect(body.credential).toMatchObject({ region: 'eu-west-1', revocable: false });
    expect(body.credential.note).toContain('cannot be revoked one by one');
    expect(body.providerRef).toBe(body.credential.accessKeyId);
    // The broker sent what the rule and role say, for this repository's run.
    expect(sts.assumeRoleCalls[0]).toMatchObject({
      DurationSeconds: 900,
      Tags: [
        { Key: 'repository', Value: 'octo-org/octo-repo' },
        { Key: 'run', Value: '5029493852' },
      ],
      Policy: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject"],"Resource":["arn:aws:s3:::deploys/74/*"]}]}',
    });
  });

  it('revoking an AWS grant ends it at the broker and says, in the answer and the CLI, that the STS session stays valid', async () => {
    const { stdout } = await grantAws('json');
    const grant = JSON.parse(stdout);
    const token = await t.issuer.githubToken();
    const answer = await fetch(`${t.url}/v1/grants/${grant.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    const body = (await answer.json()) as { id: string; status: string; revocationNote?: string };
    expect(answer.status).toBe(200);
    expect(body).toMatchObject({ id: grant.id, status: 'revoked' });
    expect(body.revocationNote).toContain('cannot be revoked one by one');
    expect(body.revocationNote).toContain('latchkey aws revoke-sessions');

    const cli = capturedIO({});
    const code = await main(['revoke', '--url', t.url, '--token', await t.issuer.githubToken(), grant.id], cli.io);
    expect(code).toBe(0);
    expect(cli.stdout()).toContain(`grant ${grant.id}: revoked`);
    expect(cli.stdout()).toContain('note: STS credentials cannot be revoked one by one');
  });

  it('the audit log ties the access key id to the repository and run, and never holds the secret or session token', async () => {
    const { stdout } = await grantAws('json');
    const body = JSON.parse(stdout);
    const client = new pg.Client({ connectionString: t.databaseUrl });
    await client.connect();
    const rows = (await client.query('SELECT type, outcome, body FROM audit_events WHERE grant_id = $1 ORDER BY seq', [body.id])).rows;
    await client.end();
    expect(rows.map((r) => r.type)).toEqual(['grant.requested', 'grant.issued']);
    const issued = rows[1].body as string;
    expect(issued).toContain(body.credential.accessKeyId);
    expect(issued).toContain(sts.issued(body.credential.accessKeyId)!.assumedRoleId);
    expect(issued).toContain('5029493852');
    for (const row of rows) {
      expect(row.body).not.toContain(body.credential.secretAccessKey);
      expect(row.body).not.toContain(body.credential.sessionToken);
    }
  });

  it('--format credential-process prints exactly the credential_process document', async () => {
    const { code, stdout } = await grantAws('credential-process');
    expect(code).toBe(0);
    const doc = JSON.parse(stdout);
    expect(Object.keys(doc)).toEqual(['Version', 'AccessKeyId', 'SecretAccessKey', 'SessionToken', 'Expiration']);
    expect(doc.Version).toBe(1);
    expect(doc.Expiration).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(doc.Expiration).toBe(sts.issued(doc.AccessKeyId)!.expiration.toISOString());
  });

  it('a job the policy does not cover gets the reason on stderr, nothing on stdout, and a non-zero exit', async () => {
    const { code, stdout, stderr } = await grantAws('env', [], { environment: 'staging' });
    expect(code).not.toBe(0);
    expect(stdout).toBe('');
    expect(stderr).toContain('policy_denied');
    expect(sts.requests).toHaveLength(0);
  });

  it('an unknown format is refused before asking the broker', async () => {
    const { code, stderr } = await grantAws('yaml');
    expect(code).toBe(2);
    expect(stderr).toContain('--format must be one of env, json, credential-process, github');
    expect(sts.requests).toHaveLength(0);
  });
});

describe('latchkey credential-process', () => {
  it('prints the credential_process JSON on stdout and nothing else', async () => {
    const cli = capturedIO({ LATCHKEY_TOKEN: await t.issuer.githubToken() });
    const code = await main(['credential-process', '--url', t.url, '--target', 'prod-aws', '--role', 'deploy'], cli.io);
    expect(code).toBe(0);
    expect(cli.stderr()).toBe('');
    expect(cli.stdout().endsWith('}\n')).toBe(true);
    expect(Object.keys(JSON.parse(cli.stdout()))).toEqual(['Version', 'AccessKeyId', 'SecretAccessKey', 'SessionToken', 'Expiration']);
  });

  it('an STS failure at the broker comes out on stderr with a non-zero exit', async () => {
    sts.failNext('AssumeRole', 'AccessDenied');
    const cli = capturedIO({ LATCHKEY_TOKEN: await t.issuer.githubToken() });
    const code = await main(['credential-process', '--url', t.url, '--target', 'prod-aws', '--role', 'deploy'], cli.io);
    expect(code).not.toBe(0);
    expect(cli.stdout()).toBe('');
    expect(cli.stderr()).toContain('provider_misconfigured');
    expect(cli.stderr()).toContain('arn:aws:iam::123456789012:role/ci/deploy');
  });
});

describe('latchkey grant aws for a role that needs approval', () => {
  let approvals: TestBroker;

  beforeAll(async () => {
    approvals = await startTestBroker({
      issuer: t.issuer,
      configure: (issuer) => {
        const config = awsBrokerConfig(issuer, sts.url) as { rules: { allow: Record<string, unknown>[] }[] };
        for (const rule of config.rules) for (const allow of rule.allow) allow['require_approval'] = true;
        return { ...config, roles: { approver: [{ issuer: 'gh', when: { repository_id: '74', workflow: 'approve-deploys' } }] } };
      },
    });
  });
  afterAll(async () => {
    await approvals?.close();
  });

  const cli = async (args: string[]) => {
    const io = capturedIO({});
    const code = await main([...args, '--url', approvals.url, '--token', await t.issuer.githubToken()], io.io);
    return { code, stdout: io.stdout(), stderr: io.stderr() };
  };

  it('prints the pending grant id with exit 3, and --claim collects the credential once someone else approved it', async () => {
    const requested = await cli(['grant', 'aws', '--target', 'prod-aws', '--role', 'deploy', '--format', 'json']);
    expect(requested.code).toBe(3);
    const id = requested.stdout.trim();
    expect(requested.stderr).toContain(`grant ${id} waits for approval`);
    expect(requested.stderr).toContain(`latchkey grant aws --claim ${id} --format json`);
    expect(sts.assumeRoleCalls).toHaveLength(0);

    const lead = await t.issuer.githubToken({ workflow: 'approve-deploys', sub: 'repo:octo-org/octo-repo:ref:refs/heads/approvals' });
    expect((await approvals.call('POST', `/v1/grants/${id}/approve`, { token: lead })).status).toBe(200);

    const claimed = await cli(['grant', 'aws', '--claim', id, '--format', 'json']);
    expect(claimed.stderr).toBe('');
    expect(claimed.code).toBe(0);
    expect(JSON.parse(claimed.stdout)).toMatchObject({ id, status: 'active', kind: 'aws', credential: { region: 'eu-west-1' } });
    expect(sts.assumeRoleCalls).toHaveLength(1);
  });

  it('credential-process cannot wait: it says so on stderr and how to collect the grant, with nothing on stdout', async () => {
    const r = await cli(['credential-process', '--target', 'prod-aws', '--role', 'deploy']);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/grant [0-9a-f-]{36} waits for approval .*latchkey grant aws --claim [0-9a-f-]{36}/);
  });

  it('--claim with --target or --role is refused: those were chosen when the grant was requested', async () => {
    const r = await cli(['grant', 'aws', '--claim', '00000000-0000-4000-8000-000000000000', '--role', 'deploy']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('drop --target and --role');
  });
});
