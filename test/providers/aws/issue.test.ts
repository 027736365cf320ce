import { createHash } from 'node:crypto';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { describe, expect, it } from 'vitest';
import { STS_REVOCATION_NOTE } from '../../../src/providers/aws/index.js';
import type { AwsTargetProvider } from '../../../src/providers/aws/provider.js';
import { LocalSts, type StsCredentials } from '../../support/sts-server.js';
import { DEPLOY_ROLE_ARN, awsTarget, brokerIdentity, githubClaims, issueInput, openTarget, refusal, useBrokerIdentity, useLocalStsTarget } from './support.js';

let sts: LocalSts;
let broker: StsCredentials;
let target: AwsTargetProvider;

useLocalStsTarget((parts) => ({ sts, broker, target } = parts));

describe('issuing AWS credentials through AssumeRole', () => {
  it('sends exactly the duration, session name, source identity, tags, policy and managed policies the role describes', async () => {
    await target.issue(issueInput());
    expect(sts.assumeRoleCalls).toHaveLength(1);
    const call = sts.assumeRoleCalls[0]!;
    expect(call).toMatchObject({
      signedBy: broker.accessKeyId,
      region: 'eu-west-1',
      RoleArn: DEPLOY_ROLE_ARN,
      DurationSeconds: 900,
      RoleSessionName: 'repo-octo-org-octo-repo-environment-production',
      SourceIdentity: 'repo-octo-org-octo-repo-environment-production',
      Tags: [
        { Key: 'repository', Value: 'octo-org/octo-repo' },
        { Key: 'run', Value: '4242' },
        { Key: 'environment', Value: 'production' },
      ],
      PolicyArns: ['arn:aws:iam::aws:policy/ReadOnlyAccess'],
    });
    expect(call.ExternalId).toBeUndefined();
    expect(JSON.parse(call.Policy!)).toEqual({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['s3:PutObject'], Resource: ['arn:aws:s3:::deploys/123456789/*'] },
        { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: ['arn:aws:s3:::deploys'], Condition: { StringLike: { 's3:prefix': ['123456789/*'] } } },
      ],
    });
  });

  it('returns working credentials: STS recognises them as the assumed role', async () => {
    const issued = await target.issue(issueInput());
    const c = issued.credential as Record<string, string>;
    expect(c).toMatchObject({ region: 'eu-west-1', revocable: false, note: STS_REVOCATION_NOTE });
    expect(c['assumedRoleArn']).toBe('arn:aws:sts::123456789012:assumed-role/deploy/repo-octo-org-octo-repo-environment-production');
    expect(new Date(c['expiration']!).getTime()).toBe(sts.issued(c['accessKeyId']!)!.expiration.getTime());

    const asCaller = new STSClient({
      region: 'eu-west-1',
      endpoint: sts.url,
      credentials: { accessKeyId: c['accessKeyId']!, secretAccessKey: c['secretAccessKey']!, sessionToken: c['sessionToken']! },
    });
    const me = await asCaller.send(new GetCallerIdentityCommand({}));
    asCaller.destroy();
    expect(me.Arn).toBe(c['assumedRoleArn']);
  });

  it('records in the audit details the access key id, assumed-role id, session name and policy hash, never the secret or session token', async () => {
    const issued = await target.issue(issueInput());
    const c = issued.credential as Record<string, string>;
    expect(issued.providerRef).toBe(c['accessKeyId']);
    const sent = sts.assumeRoleCalls[0]!;
    expect(issued.auditDetails).toMatchObject({
      access_key_id: c['accessKeyId'],
      assumed_role_id: sts.issued(c['accessKeyId']!)!.assumedRoleId,
      session_name: sent.RoleSessionName,
      source_identity: sent.SourceIdentity,
      role_arn: DEPLOY_ROLE_ARN,
      session_policy_sha256: createHash('sha256').update(sent.Policy!).digest('hex'),
    });
    const audit = JSON.stringify(issued.auditDetails);
    expect(audit).not.toContain(c['secretAccessKey']);
    expect(audit).not.toContain(c['sessionToken']);
  });

  it.each([
    ['5 minutes', 300, 900],
    ['15 minutes', 900, 900],
    ['30 minutes', 1800, 1800],
    ['2 hours (beyond the role maximum of 1 hour)', 7200, 3600],
  ])('asks for a duration STS accepts for a grant of %s', async (_label, ttlSeconds, expected) => {
    const issuedAt = new Date();
    await target.issue(issueInput({ issuedAt, expiresAt: new Date(issuedAt.getTime() + ttlSeconds * 1000) }));
    expect(sts.assumeRoleCalls[0]!.DurationSeconds).toBe(expected);
  });

  it('uses session name and source identity templates when the role has them', async () => {
    const withTemplates = await openTarget(
      awsTarget(sts.url, { release: { role_arn: 'arn:aws:iam::123456789012:role/release', session_name: 'gh-{repository_id}-{run_id}', source_identity: 'gh-{actor}' } }),
    );
    await withTemplates.issue(issueInput({ allow: { roles: ['release'] }, scope: { role: 'release' } }));
    await withTemplates.close();
    expect(sts.assumeRoleCalls[0]).toMatchObject({ RoleSessionName: 'gh-123456789-4242', SourceIdentity: 'gh-octocat', Tags: [] });
    expect(sts.assumeRoleCalls[0]!.Policy).toBeUndefined();
  });

  it('sends the external id the role requires, read from the environment', async () => {
    const withExternalId = await openTarget(
      awsTarget(sts.url, { partner: { role_arn: 'arn:aws:iam::210987654321:role/partner', external_id_env: 'PARTNER_EXTERNAL_ID' } }),
      { PARTNER_EXTERNAL_ID: 'latchkey-4f9c2a' },
    );
    await withExternalId.issue(issueInput({ allow: { roles: ['partner'] }, scope: { role: 'partner' } }));
    await withExternalId.close();
    expect(sts.assumeRoleCalls[0]!.ExternalId).toBe('latchkey-4f9c2a');
  });

  it('refuses to open a target whose external id variable is unset', async () => {
    const err = await refusal(openTarget(awsTarget(sts.url, { partner: { role_arn: 'arn:aws:iam::210987654321:role/partner', external_id_env: 'LATCHKEY_TEST_UNSET_VAR' } })));
    expect(err.code).toBe('provider_misconfigured');
    expect(err.message).toContain('$LATCHKEY_TEST_UNSET_VAR');
  });

  it('revoking a grant succeeds without calling AWS, because STS cannot revoke one session', async () => {
    const issued = await target.issue(issueInput());
    sts.reset();
    await target.revoke({ grantId: 'grant-1', providerRef: issued.providerRef, reason: 'revoked' });
    await target.revoke({ grantId: 'grant-1', providerRef: issued.providerRef, reason: 'revoked' });
    expect(sts.requests).toHaveLength(0);
    expect(target.revokeOnExpiry).toBe(false);
  });

  it('is ready when the default provider chain yields the broker credentials', async () => {
    expect(await target.ready()).toBe(true);
  });
});

describe('when STS refuses or fails', () => {
  it('AccessDenied is an operator problem (502) that names the role', async () => {
    sts.failNext('AssumeRole', 'AccessDenied');
    const err = await refusal(target.issue(issueInput()));
    expect(err.code).toBe('provider_misconfigured');
    expect(err.status).toBe(502);
    expect(err.message).toContain(`may not sts:AssumeRole on ${DEPLOY_ROLE_ARN}`);
    expect(err.message).toContain('operator problem');
    expect(err.expose).toBe(true);
  });

  it('throttling is retried by the SDK, then answered with 503', async () => {
    sts.failNext('AssumeRole', 'Throttling', 10);
    const err = await refusal(target.issue(issueInput()));
    expect(err.code).toBe('provider_unavailable');
    expect(err.status).toBe(503);
    expect(err.message).toContain('throttled');
    expect(sts.assumeRoleCalls.length).toBe(3);
  });

  it('throttling that clears before the retries run out still issues', async () => {
    sts.failNext('AssumeRole', 'Throttling', 1);
    const issued = await target.issue(issueInput());
    expect(issued.providerRef).toMatch(/^ASIA/);
    expect(sts.assumeRoleCalls.length).toBe(2);
  });

  it("expired broker credentials say so, as an operator problem", async () => {
    sts.expireCaller(broker.accessKeyId);
    const err = await refusal(target.issue(issueInput()));
    expect(err.code).toBe('provider_misconfigured');
    expect(err.message).toContain("broker's own AWS credentials have expired");
  });

  it('an injected ExpiredToken answer maps the same way', async () => {
    sts.failNext('AssumeRole', 'ExpiredToken');
    const err = await refusal(target.issue(issueInput()));
    expect(err.code).toBe('provider_misconfigured');
    expect(err.message).toContain('expired');
  });

  it('credentials STS does not know are reported as invalid broker credentials, without the secret', async () => {
    const stranger = brokerIdentity();
    const saved = { id: process.env['AWS_ACCESS_KEY_ID'], secret: process.env['AWS_SECRET_ACCESS_KEY'] };
    useBrokerIdentity(stranger);
    const other = await openTarget(awsTarget(sts.url));
    try {
      const err = await refusal(other.issue(issueInput()));
      expect(err.code).toBe('provider_misconfigured');
      expect(err.message).toContain("broker's own AWS credentials are invalid");
      expect(JSON.stringify({ m: err.message, d: err.detail })).not.toContain(stranger.secretAccessKey);
    } finally {
      await other.close();
      useBrokerIdentity({ accessKeyId: saved.id!, secretAccessKey: saved.secret! });
    }
  });

  it('an unreachable endpoint is a 503 that names the endpoint', async () => {
    const dead = await LocalSts.start();
    const deadUrl = dead.url;
    await dead.close();
    const unreachable = await openTarget(awsTarget(deadUrl));
    try {
      const err = await refusal(unreachable.issue(issueInput()));
      expect(err.code).toBe('provider_unavailable');
      expect(err.status).toBe(503);
      expect(err.message).toContain(deadUrl);
    } finally {
      await unreachable.close();
    }
  });

  it('an STS outage is a 503', async () => {
    sts.failNext('AssumeRole', 'ServiceUnavailable', 10);
    const err = await refusal(target.issue(issueInput()));
    expect(err.code).toBe('provider_unavailable');
  });
});

describe('claims that would break an STS limit are refused before any STS call', () => {
  it.each([
    ['a session name with a space', { session_name: 'gh-{actor}' }, { actor: 'octo cat' }, 'session_name'],
    ['a session name over 64 characters', { session_name: 'gh-{actor}' }, { actor: 'a'.repeat(70) }, 'session_name'],
    ['a source identity with a slash', { source_identity: '{repository}' }, {}, 'source_identity'],
    ['a tag value with characters AWS refuses', { session_tags: { team: '{team}' } }, { team: 'pay<ments>' }, 'session_tags.team'],
    ['a tag value over 256 characters', { session_tags: { team: '{team}' } }, { team: 'x'.repeat(300) }, 'session_tags.team'],
    ['a wildcard in a policy value', { session_policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: 'arn:aws:s3:::b/{team}/*' }] } }, { team: '*' }, 'session_policy'],
    [
      'a policy over 2,048 characters once rendered',
      { session_policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: Array.from({ length: 12 }, (_, i) => `arn:aws:s3:::b${i}/{team}/*`) }] } },
      { team: 't'.repeat(160) },
      'session_policy',
    ],
  ])('%s', async (_label, roleSettings, extraClaims, where) => {
    const role = { role_arn: 'arn:aws:iam::123456789012:role/limits', ...roleSettings };
    const settings = awsTarget(sts.url, { limits: role });
    const claims = { ...githubClaims, ...extraClaims };
    const { awsKind } = await import('../../../src/providers/aws/index.js');
    const failure = awsKind.checkScope({ target: settings, allow: { roles: ['limits'] }, scope: { role: 'limits' }, claims });
    expect(failure).not.toBeNull();
    expect(failure!.condition).toBe(`target.roles.limits.${where}`);

    const provider = await openTarget(settings);
    const err = await refusal(provider.issue(issueInput({ claims, allow: { roles: ['limits'] }, scope: { role: 'limits' } })));
    await provider.close();
    expect(err.code).toBe('template_invalid');
    expect(sts.requests).toHaveLength(0);
  });

  it('the message names the limit', async () => {
    const { awsKind } = await import('../../../src/providers/aws/index.js');
    const settings = awsTarget(sts.url, { limits: { role_arn: 'arn:aws:iam::123456789012:role/limits', session_name: 'gh-{actor}' } });
    const long = awsKind.checkScope({ target: settings, allow: { roles: ['limits'] }, scope: { role: 'limits' }, claims: { ...githubClaims, actor: 'a'.repeat(70) } });
    expect(long!.message).toMatch(/73 characters; STS allows 2 to 64/);
    const policy = awsKind.checkScope({
      target: awsTarget(sts.url, {
        limits: {
          role_arn: 'arn:aws:iam::123456789012:role/limits',
          session_policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: Array.from({ length: 12 }, (_, i) => `arn:aws:s3:::b${i}/{team}/*`) }] },
        },
      }),
      allow: { roles: ['limits'] },
      scope: { role: 'limits' },
      claims: { ...githubClaims, team: 't'.repeat(160) },
    });
    expect(policy!.message).toMatch(/STS allows at most 2048 characters/);
  });

  it('a role the rule does not allow is refused by checkScope, naming the allowed roles', async () => {
    const { awsKind } = await import('../../../src/providers/aws/index.js');
    const failure = awsKind.checkScope({ target: awsTarget(sts.url), allow: { roles: ['deploy'] }, scope: { role: 'admin' }, claims: githubClaims });
    expect(failure).toMatchObject({ condition: 'allow.roles', expected: ['deploy'], actual: 'admin' });
  });

  it('a subject full of characters STS refuses still gives a valid default session name', async () => {
    const { awsKind } = await import('../../../src/providers/aws/index.js');
    const claims = { ...githubClaims, sub: `repo:octo-org/${'r'.repeat(80)}:ref:refs/heads/feature/ü` };
    expect(awsKind.checkScope({ target: awsTarget(sts.url), allow: { roles: ['deploy'] }, scope: { role: 'deploy' }, claims })).toBeNull();
    await target.issue(issueInput({ subject: claims.sub, claims }));
    expect(sts.assumeRoleCalls[0]!.RoleSessionName).toMatch(/^[\w+=,.@-]{64}$/);
  });
});
