import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { describe, expect, it } from 'vitest';
import { awsKind } from '../../../src/providers/aws/index.js';
import { revokeOlderSessions } from '../../../src/providers/aws/revoke-sessions.js';
import type { AwsTargetProvider } from '../../../src/providers/aws/provider.js';
import type { LocalSts, StsCredentials } from '../../support/sts-server.js';
import { awsTarget, refusal, useLocalStsTarget } from './support.js';

let sts: LocalSts;
let broker: StsCredentials;
let target: AwsTargetProvider;

useLocalStsTarget((parts) => ({ sts, broker, target } = parts));

describe('revoking every older session of a role', () => {
  it("puts AWS's AWSRevokeOlderSessions inline policy on the role, denying sessions issued before now", async () => {
    const now = new Date('2026-03-04T05:06:07.250Z');
    const revoked = await revokeOlderSessions(target, 'deploy', now);
    expect(revoked).toMatchObject({ roleArn: 'arn:aws:iam::123456789012:role/ci/deploy', cutoff: '2026-03-04T05:06:08.000Z', policyName: 'AWSRevokeOlderSessions' });
    expect(sts.putRolePolicyCalls).toHaveLength(1);
    const call = sts.putRolePolicyCalls[0]!;
    expect(call).toMatchObject({ signedBy: broker.accessKeyId, region: 'us-east-1', RoleName: 'deploy', PolicyName: 'AWSRevokeOlderSessions' });
    expect(JSON.parse(call.PolicyDocument)).toEqual({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Deny', Action: ['*'], Resource: ['*'], Condition: { DateLessThan: { 'aws:TokenIssueTime': '2026-03-04T05:06:08Z' } } }],
    });
  });

  it('IAM refusing the broker is an operator problem naming the role', async () => {
    sts.failNext('PutRolePolicy', 'AccessDenied');
    const err = await refusal(revokeOlderSessions(target, 'deploy', new Date()));
    expect(err.code).toBe('provider_misconfigured');
    expect(err.message).toContain('iam:PutRolePolicy on arn:aws:iam::123456789012:role/ci/deploy');
  });

  it('an unknown role is refused before IAM is called', async () => {
    const err = await refusal(revokeOlderSessions(target, 'nope', new Date()));
    expect(err.code).toBe('invalid_scope');
    expect(sts.requests).toHaveLength(0);
  });
});

describe('the local STS verifies what it is sent', () => {
  it('refuses a request signed with the wrong secret', async () => {
    const forger = new STSClient({ region: 'eu-west-1', endpoint: sts.url, credentials: { accessKeyId: broker.accessKeyId, secretAccessKey: 'not-the-secret' }, maxAttempts: 1 });
    await expect(forger.send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::123456789012:role/ci/deploy', RoleSessionName: 'x1' }))).rejects.toMatchObject({ name: 'SignatureDoesNotMatch' });
    forger.destroy();
    expect(sts.assumeRoleCalls).toHaveLength(0);
  });

  it('answers GetCallerIdentity only for credentials it issued', async () => {
    const asBroker = new STSClient({ region: 'eu-west-1', endpoint: sts.url, credentials: broker, maxAttempts: 1 });
    await expect(asBroker.send(new GetCallerIdentityCommand({}))).rejects.toMatchObject({ name: 'InvalidClientTokenId' });
    asBroker.destroy();
  });
});

describe('aws target configuration', () => {
  const role = { role_arn: 'arn:aws:iam::123456789012:role/deploy' };
  const problems = (settings: unknown) => {
    const parsed = awsKind.targetSchema.safeParse(settings);
    return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('accepts a minimal target', () => {
    expect(problems({ region: 'eu-west-1', roles: { deploy: role } })).toEqual([]);
  });

  it.each([
    ['a role ARN that is not one', { region: 'eu-west-1', roles: { deploy: { role_arn: 'deploy' } } }, 'roles.deploy.role_arn: expected an IAM role ARN'],
    ['a region that is not one', { region: 'Europe', roles: { deploy: role } }, 'region: expected an AWS region'],
    ['more than 50 session tags', { region: 'eu-west-1', roles: { deploy: { ...role, session_tags: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`t${i}`, 'v'])) } } }, 'at most 50 session tags'],
    ['tag keys differing only in case', { region: 'eu-west-1', roles: { deploy: { ...role, session_tags: { Team: 'a', team: 'b' } } } }, 'case-insensitive'],
    ['a reserved aws: tag key', { region: 'eu-west-1', roles: { deploy: { ...role, session_tags: { 'aws:team': 'a' } } } }, 'reserved by AWS'],
    ['an IAM policy variable with single braces', { region: 'eu-west-1', roles: { deploy: { ...role, session_policy: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username}/*"}]}' } } }, 'doubled braces'],
    ['a session policy that is not JSON', { region: 'eu-west-1', roles: { deploy: { ...role, session_policy: '{not json' } } }, 'expected a JSON policy document'],
    ['both external_id and external_id_env', { region: 'eu-west-1', roles: { deploy: { ...role, external_id: 'abc', external_id_env: 'X' } } }, 'not both'],
    ['a space in a session name\'s fixed text', { region: 'eu-west-1', roles: { deploy: { ...role, session_name: 'gh run {run_id}' } } }, 'roles.deploy.session_name: session name: " " is not allowed there; STS accepts letters, digits and _+=,.@-'],
    ['a slash in a source identity\'s fixed text', { region: 'eu-west-1', roles: { deploy: { ...role, source_identity: 'ci/{repository_id}' } } }, 'roles.deploy.source_identity: source identity: "/" is not allowed there'],
    ['a character AWS refuses in a tag value\'s fixed text', { region: 'eu-west-1', roles: { deploy: { ...role, session_tags: { team: 'a<{team}>' } } } }, 'roles.deploy.session_tags.team: session tag value: "<" is not allowed there; STS accepts letters, digits, spaces and _.:/=+-@'],
    ['eleven managed policies', { region: 'eu-west-1', roles: { deploy: { ...role, policy_arns: Array.from({ length: 11 }, (_, i) => `arn:aws:iam::aws:policy/P${i}`) } } }, 'at most 10'],
  ])('refuses %s, naming the path', (_label, settings, message) => {
    expect(problems(settings).join('\n')).toContain(message);
  });

  it('accepts fixed text STS allows around placeholders', () => {
    expect(problems({ region: 'eu-west-1', roles: { deploy: { ...role, session_name: 'gh-run.{run_id}@ci', session_tags: { origin: 'GitHub Actions: {repository}' } } } })).toEqual([]);
  });

  it('keeps IAM policy variables written with doubled braces', async () => {
    const settings = awsTarget(sts.url, {
      self: { role_arn: 'arn:aws:iam::123456789012:role/self', session_policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::b/${{aws:PrincipalTag/team}}/{repository_id}/*' }] } },
    });
    const { renderSession } = await import('../../../src/providers/aws/session.js');
    const rendered = renderSession(settings.roles['self']!, { repository_id: '42' }, 'sub', 'x');
    expect(rendered.ok && JSON.parse(rendered.session.policy!).Statement[0].Resource).toBe('arn:aws:s3:::b/${aws:PrincipalTag/team}/42/*');
  });
});
