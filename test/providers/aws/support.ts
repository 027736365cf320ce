import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { isLatchkeyError, type LatchkeyError } from '../../../src/errors.js';
import { awsKind, type AwsAllow, type AwsScope, type AwsTarget } from '../../../src/providers/aws/index.js';
import { AwsTargetProvider } from '../../../src/providers/aws/provider.js';
import type { IssueInput } from '../../../src/providers/provider.js';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { LocalSts, type StsCredentials } from '../../support/sts-server.js';
import { startTestBroker, type TestBroker } from '../../support/broker.js';

/** The broker's own AWS identity, handed to the SDK's default provider chain through the environment. */
export function brokerIdentity(): StsCredentials {
  return { accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(30).toString('base64') };
}

/** Points the default provider chain at `identity` only: environment credentials, no files, no instance metadata. */
export function useBrokerIdentity(identity: StsCredentials): void {
  process.env['AWS_ACCESS_KEY_ID'] = identity.accessKeyId;
  process.env['AWS_SECRET_ACCESS_KEY'] = identity.secretAccessKey;
  delete process.env['AWS_SESSION_TOKEN'];
  delete process.env['AWS_PROFILE'];
  process.env['AWS_CONFIG_FILE'] = '/nonexistent/latchkey-test/config';
  process.env['AWS_SHARED_CREDENTIALS_FILE'] = '/nonexistent/latchkey-test/credentials';
  process.env['AWS_EC2_METADATA_DISABLED'] = 'true';
}

export const DEPLOY_ROLE_ARN = 'arn:aws:iam::123456789012:role/ci/deploy';

/** A target as it would come out of the YAML, validated by the kind's schema. */
export function awsTarget(stsUrl: string, roles: Record<string, unknown> = {}): AwsTarget {
  return awsKind.targetSchema.parse({
    region: 'eu-west-1',
    sts_endpoint: stsUrl,
    iam_endpoint: stsUrl,
    roles: {
      deploy: {
        role_arn: DEPLOY_ROLE_ARN,
        session_policy: {
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Action: ['s3:PutObject'], Resource: ['arn:aws:s3:::deploys/{repository_id}/*'] },
            { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: ['arn:aws:s3:::deploys'], Condition: { StringLike: { 's3:prefix': ['{repository_id}/*'] } } },
          ],
        },
        policy_arns: ['arn:aws:iam::aws:policy/ReadOnlyAccess'],
        session_tags: { repository: '{repository}', run: '{run_id}', environment: '{environment}' },
      },
      ...roles,
    },
  });
}

export const githubClaims = {
  iss: 'https://token.actions.githubusercontent.com',
  sub: 'repo:octo-org/octo-repo:environment:production',
  repository: 'octo-org/octo-repo',
  repository_id: '123456789',
  repository_owner: 'octo-org',
  repository_owner_id: '987654',
  run_id: '4242',
  environment: 'production',
  ref: 'refs/heads/main',
  actor: 'octocat',
} as const;

export async function openTarget(target: AwsTarget, env: Record<string, string> = {}): Promise<AwsTargetProvider> {
  return new AwsTargetProvider('prod-aws', target, { logger: pino({ level: 'silent' }) }, { ...process.env, ...env });
}

export function issueInput(overrides: Partial<IssueInput<AwsAllow, AwsScope>> = {}): IssueInput<AwsAllow, AwsScope> {
  const issuedAt = new Date();
  return {
    grantId: 'grant-1',
    requestId: 'req-1',
    subject: githubClaims.sub,
    issuerName: 'github',
    claims: githubClaims,
    allow: { roles: ['deploy'] },
    scope: { role: 'deploy' },
    issuedAt,
    expiresAt: new Date(issuedAt.getTime() + 900_000),
    ...overrides,
  };
}

/** The LatchkeyError a promise rejects with; fails the test if it resolves or throws something else. */
export async function refusal(promise: Promise<unknown>): Promise<LatchkeyError> {
  try {
    await promise;
  } catch (err) {
    if (isLatchkeyError(err)) return err;
    throw err;
  }
  throw new Error('expected the call to be refused');
}

/** A CliIO that keeps what a verb writes, for in-process CLI tests. */
export function capturedIO(env: Record<string, string | undefined> = {}): {
  io: import('../../../src/cli/io.js').CliIO;
  stdout: () => string;
  stderr: () => string;
} {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (t: string) => (out += t) }, stderr: { write: (t: string) => (err += t) }, env, cwd: process.cwd() },
    stdout: () => out,
    stderr: () => err,
  };
}

/** A policy for the test broker: octo-org/octo-repo (id 74, owner 65) deploying to prod from main may assume `deploy`. */
export function awsBrokerConfig(issuer: { url: string; audience: string }, stsUrl: string): Record<string, unknown> {
  return {
    issuers: [{ name: 'gh', preset: 'github', issuer: issuer.url, audience: issuer.audience, allow_insecure_http: true }],
    targets: {
      'prod-aws': {
        kind: 'aws',
        region: 'eu-west-1',
        sts_endpoint: stsUrl,
        iam_endpoint: stsUrl,
        roles: {
          deploy: {
            role_arn: DEPLOY_ROLE_ARN,
            session_policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['s3:PutObject'], Resource: ['arn:aws:s3:::deploys/{repository_id}/*'] }] },
            session_tags: { repository: '{repository}', run: '{run_id}' },
          },
        },
      },
    },
    rules: [
      {
        name: 'octo-repo-deploys',
        issuer: 'gh',
        when: { repository_id: '74', repository_owner_id: '65', ref: 'refs/heads/main', environment: 'prod' },
        allow: [{ kind: 'aws', target: 'prod-aws', roles: ['deploy'] }],
      },
    ],
    roles: { admin: [{ issuer: 'gh', when: { repository_id: '74', workflow: 'break-glass' } }] },
  };
}

/**
 * Stands in for the Actions runtime's token service (ACTIONS_ID_TOKEN_REQUEST_URL):
 * GET with `audience` in the query and `Authorization: bearer <request token>`,
 * answering `{"value": "<jwt>"}` minted for the requested audience, as GitHub does.
 */
export async function startGitHubTokenService(mint: (audience: string) => Promise<string>): Promise<{
  url: string;
  requestToken: string;
  requests: { audience: string | null; authorization: string | undefined; apiVersion: string | null }[];
  close(): Promise<void>;
}> {
  const { createServer } = await import('node:http');
  const requestToken = randomBytes(24).toString('base64url');
  const requests: { audience: string | null; authorization: string | undefined; apiVersion: string | null }[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    requests.push({ audience: url.searchParams.get('audience'), authorization: req.headers.authorization, apiVersion: url.searchParams.get('api-version') });
    if (req.method !== 'GET' || url.pathname !== '/_apis/distributedtask/hubs/build/plans/p/jobs/j/idtoken') {
      res.writeHead(404).end();
      return;
    }
    if (req.headers.authorization !== `bearer ${requestToken}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"message":"Unauthorized"}');
      return;
    }
    mint(url.searchParams.get('audience') ?? 'https://github.com/octo-org').then(
      (value) => res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify({ count: 1, value })),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as import('node:net').AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/_apis/distributedtask/hubs/build/plans/p/jobs/j/idtoken?api-version=2.0`,
    requestToken,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}

/**
 * A local STS trusting a fresh broker identity, and an aws target opened on
 * it, for one test file: started before all tests, reset before each, closed
 * after all. `bind` receives them once they exist.
 */
export function useLocalStsTarget(bind: (parts: { sts: LocalSts; broker: StsCredentials; target: AwsTargetProvider }) => void): void {
  let parts: { sts: LocalSts; broker: StsCredentials; target: AwsTargetProvider } | undefined;
  beforeAll(async () => {
    const broker = brokerIdentity();
    useBrokerIdentity(broker);
    const sts = await LocalSts.start({ callers: [broker] });
    parts = { sts, broker, target: await openTarget(awsTarget(sts.url)) };
    bind(parts);
  });
  afterAll(async () => {
    await parts?.target.close();
    await parts?.sts.close();
  });
  beforeEach(() => parts?.sts.reset());
}

/**
 * A broker whose aws target points at a fresh local STS that trusts a fresh
 * broker identity (set in the environment, as the SDK's default chain reads it).
 */
export async function startAwsBroker(): Promise<{ sts: LocalSts; broker: StsCredentials; t: TestBroker }> {
  const broker = brokerIdentity();
  useBrokerIdentity(broker);
  const sts = await LocalSts.start({ callers: [broker] });
  const t = await startTestBroker({ configure: (issuer) => awsBrokerConfig(issuer, sts.url) });
  return { sts, broker, t };
}
