// AWS grants benchmark: the broker's own overhead on top of STS.
//
// A minimal STS answers AssumeRole on 127.0.0.1 (it does not check signatures:
// that is STS's cost, not the broker's). Three measurements, each sequential so
// every latency is one request alone:
//   1. provider: AwsTargetProvider.issue() against raw STSClient.send(AssumeRole)
//      with the same parameters, alternated, in one process: what rendering the
//      session (names, tags, policy, checks) and building the response adds.
//   2. grants: POST /v1/grants {kind: aws} to a full broker in its own process
//      (token verification, policy, durable audit intent + result, AssumeRole),
//      against the STS round trip as an SDK client in this process sees it.
//   3. floor: the same against lib/skeleton-grant.js, a bare node:http server
//      doing only the jti burn, intent commit, AssumeRole and result commit
//      (two durable commits, as in the broker):
//      what any broker in Node pays on this machine before doing its own work.
// The grants figures also give the broker's CPU time per grant (user + system,
// every thread, from /proc), which is steadier than latency on a shared machine.
// Runs from the build (dist/). `node bench/aws.js` prints the figures;
// `runAwsBench()` returns them for bench/run.js. LATCHKEY_BENCH_BROKER_ARGS
// passes Node flags to the broker process (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { startBrokerProcess, startSkeletonProcess } from './lib/children.js';
import { startCluster } from './lib/cluster.js';
import { startBenchIssuer } from './lib/issuer.js';
import { cpuMsOf, percentile, round } from './lib/stats.js';

const dist = (path) => import(new URL(`../dist/${path}`, import.meta.url).href);
/**
 * Grants before the measured ones. A broker in service has run its grant path
 * many thousand times; after 100 grants V8 still ran much of it unoptimized
 * (measured: 8.4 ms of broker CPU per grant after 100, 4.4 ms after 3,000).
 */
const GRANT_WARM_UP = 2000;
const ROLE_ARN = 'arn:aws:iam::123456789012:role/deploy';
// The broker's own AWS identity, found by the SDK's default provider chain in the environment.
const BROKER_AWS_ENV = { AWS_ACCESS_KEY_ID: 'AKIABENCHBENCHBENCH0', AWS_SECRET_ACCESS_KEY: 'bench-secret', AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent' };

/** A bare STS: AssumeRole in, AWS-shaped XML out. */
async function startBenchSts() {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const params = new URLSearchParams(body);
      const session = params.get('RoleSessionName') ?? 'session';
      const expiration = new Date(Date.now() + Number(params.get('DurationSeconds') ?? 900) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      const xml =
        `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>` +
        `<AssumedRoleUser><AssumedRoleId>AROABENCH:${session}</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/deploy/${session}</Arn></AssumedRoleUser>` +
        `<Credentials><AccessKeyId>ASIA${randomBytes(8).toString('hex').toUpperCase()}</AccessKeyId><SecretAccessKey>${randomBytes(30).toString('base64')}</SecretAccessKey>` +
        `<SessionToken>${randomBytes(200).toString('base64')}</SessionToken><Expiration>${expiration}</Expiration></Credentials>` +
        `</AssumeRoleResult><ResponseMetadata><RequestId>${randomBytes(16).toString('hex')}</RequestId></ResponseMetadata></AssumeRoleResponse>`;
      res.writeHead(200, { 'content-type': 'text/xml', 'x-amzn-RequestId': 'bench' });
      res.end(xml);
    });
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((ok) => { server.closeAllConnections(); server.close(() => ok()); }) };
}

function targetSettings(stsUrl) {
  return {
    kind: 'aws',
    region: 'eu-west-1',
    sts_endpoint: stsUrl,
    roles: {
      deploy: {
        role_arn: ROLE_ARN,
        session_policy: {
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: ['s3:PutObject', 's3:GetObject'], Resource: ['arn:aws:s3:::artifacts/{repository_id}/*'] }],
        },
        session_tags: { repository: '{repository}', environment: '{environment}', workflow: '{workflow}' },
      },
    },
  };
}

const claims = { sub: 'repo:acme/app:environment:prod', repository: 'acme/app', repository_id: '74', environment: 'prod', workflow: 'deploy' };

function summary(values) {
  return { p50: round(percentile(values, 50)), p99: round(percentile(values, 99)) };
}

/** Provider-level: issue() against the raw AssumeRole it makes. Milliseconds. */
async function measureProvider(stsUrl, iterations) {
  const { awsKind } = await dist('providers/aws/index.js');
  const { AssumeRoleCommand } = await import('@aws-sdk/client-sts');
  const settings = awsKind.targetSchema.parse((({ kind, ...rest }) => rest)(targetSettings(stsUrl)));
  const target = await awsKind.open('bench-aws', settings, { logger: pino({ level: 'silent' }), clock: { now: () => new Date() }, dataDir: '.', devMode: false });
  const input = () => {
    const issuedAt = new Date();
    return { grantId: 'g', requestId: 'r', subject: claims.sub, issuerName: 'github', claims, allow: { roles: ['deploy'] }, scope: { role: 'deploy' }, issuedAt, expiresAt: new Date(issuedAt.getTime() + 900_000) };
  };
  // The exact request issue() sends, for the raw side.
  const raw = {
    RoleArn: ROLE_ARN,
    RoleSessionName: 'repo-acme-app-environment-prod',
    SourceIdentity: 'repo-acme-app-environment-prod',
    DurationSeconds: 900,
    Tags: [{ Key: 'repository', Value: 'acme/app' }, { Key: 'environment', Value: 'prod' }, { Key: 'workflow', Value: 'deploy' }],
    Policy: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":["arn:aws:s3:::artifacts/74/*"]}]}',
  };
  const issueMs = [];
  const rawMs = [];
  for (let i = 0; i < 200; i += 1) {
    await target.issue(input());
    await target.sts.send(new AssumeRoleCommand(raw));
  }
  const timeIssue = async () => {
    const t0 = performance.now();
    await target.issue(input());
    issueMs.push(performance.now() - t0);
  };
  const timeRaw = async () => {
    const t0 = performance.now();
    await target.sts.send(new AssumeRoleCommand(raw));
    rawMs.push(performance.now() - t0);
  };
  // Alternating which goes first keeps order effects (socket reuse, GC) out of the difference.
  for (let i = 0; i < iterations; i += 1) {
    if (i % 2 === 0) {
      await timeIssue();
      await timeRaw();
    } else {
      await timeRaw();
      await timeIssue();
    }
  }
  await target.close();
  const issue = summary(issueMs);
  const assumeRole = summary(rawMs);
  return { iterations, issue, assumeRole, overheadP50: round(issue.p50 - assumeRole.p50), overheadP99: round(issue.p99 - assumeRole.p99) };
}

/**
 * Sequential POSTs of `body` to `url` (one token each), each followed by an
 * AssumeRole from an SDK client in this process, after a warm-up: the grant's
 * latency against the STS round trip, and the server's CPU per grant.
 * Milliseconds.
 */
async function measureAgainstSts({ url, serverPid, stsUrl, tokens, body, iterations }) {
  const { STSClient, AssumeRoleCommand } = await import('@aws-sdk/client-sts');
  const client = new STSClient({ region: 'eu-west-1', endpoint: stsUrl, credentials: { accessKeyId: 'AKIABENCHBENCHBENCH0', secretAccessKey: 'bench-secret' } });
  const grant = async (token) => {
    const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
    const text = await res.text();
    if (res.status !== 201) throw new Error(`grant answered ${res.status}: ${text.slice(0, 300)}`);
  };
  const raw = { RoleArn: ROLE_ARN, RoleSessionName: 'repo-acme-app-environment-prod', SourceIdentity: 'repo-acme-app-environment-prod', DurationSeconds: 900 };
  try {
    for (let i = 0; i < GRANT_WARM_UP; i += 1) {
      await grant(tokens.pop());
      await client.send(new AssumeRoleCommand(raw));
    }
    const grantMs = [];
    const stsMs = [];
    const cpuBefore = cpuMsOf(serverPid);
    for (let i = 0; i < iterations; i += 1) {
      let t0 = performance.now();
      await grant(tokens.pop());
      grantMs.push(performance.now() - t0);
      t0 = performance.now();
      await client.send(new AssumeRoleCommand(raw));
      stsMs.push(performance.now() - t0);
    }
    const cpuMsPerGrant = round((cpuMsOf(serverPid) - cpuBefore) / iterations);
    const grants = summary(grantMs);
    const sts = summary(stsMs);
    return { iterations, grant: grants, stsRoundTrip: sts, overheadP50: round(grants.p50 - sts.p50), overheadP99: round(grants.p99 - sts.p99), cpuMsPerGrant };
  } finally {
    client.destroy();
  }
}

const AWS_GRANT_BODY = JSON.stringify({ kind: 'aws', target: 'bench-aws', scope: { role: 'deploy' } });

/** Grant-level: POST /v1/grants through a broker process, against the STS round trip. Milliseconds. */
async function measureGrants(stsUrl, databaseUrl, iterations, brokerExecArgv) {
  const issuer = await startBenchIssuer();
  const config = {
    issuers: [{ name: 'github', preset: 'github', issuer: issuer.url, audience: issuer.audience, allow_insecure_http: true }],
    targets: { 'bench-aws': targetSettings(stsUrl) },
    rules: [
      {
        name: 'acme-app-deploys',
        issuer: 'github',
        when: { repository_id: '74', repository_owner_id: '65', ref: 'refs/heads/main', environment: 'prod', runner_environment: 'github-hosted' },
        allow: [{ kind: 'aws', target: 'bench-aws', roles: ['deploy'] }],
      },
    ],
  };
  const broker = await startBrokerProcess({ config, databaseUrl, env: BROKER_AWS_ENV, execArgv: brokerExecArgv });
  try {
    const tokens = [];
    for (let i = 0; i < iterations + GRANT_WARM_UP; i += 1) tokens.push(await issuer.mint('ES256', { workflow: 'deploy', runner_environment: 'github-hosted' }));
    return await measureAgainstSts({ url: `${broker.url}/v1/grants`, serverPid: broker.pid, stsUrl, tokens, body: AWS_GRANT_BODY, iterations });
  } finally {
    await broker.close();
    await issuer.close();
  }
}

/**
 * The same measurement against lib/skeleton-grant.js: a bare server doing only
 * what a grant cannot skip (jti burn, durable intent and result commits around AssumeRole), so its
 * overhead is the floor any broker in Node on this machine starts from.
 */
async function measureSkeleton(stsUrl, databaseUrl, iterations) {
  const skeleton = await startSkeletonProcess({ databaseUrl, stsUrl, roleArn: ROLE_ARN, env: BROKER_AWS_ENV });
  try {
    // Not verified there; a GitHub-sized header, so the request is the broker's size.
    const tokens = Array.from({ length: iterations + GRANT_WARM_UP }, () => randomBytes(700).toString('base64url'));
    return await measureAgainstSts({ url: skeleton.url, serverPid: skeleton.pid, stsUrl, tokens, body: AWS_GRANT_BODY, iterations });
  } finally {
    await skeleton.close();
  }
}

/**
 * The floor under a grant's durable audit commits: one-row INSERTs committed
 * with synchronous_commit on, one at a time, from a pg client in this process
 * to the broker's database. Milliseconds.
 */
async function measureDurableCommit(databaseUrl, iterations) {
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('CREATE TABLE bench_commit_floor (id bigserial PRIMARY KEY, body text NOT NULL)');
    await client.query('SET synchronous_commit = on');
    const insert = { name: 'bench_commit_floor', text: 'INSERT INTO bench_commit_floor (body) VALUES ($1)' };
    for (let i = 0; i < 100; i += 1) await client.query(insert, ['warm-up']);
    const ms = [];
    for (let i = 0; i < iterations; i += 1) {
      const t0 = performance.now();
      await client.query(insert, ['a grant-sized audit row would be about a kilobyte; this one is short']);
      ms.push(performance.now() - t0);
    }
    return { iterations, ...summary(ms) };
  } finally {
    await client.query('DROP TABLE IF EXISTS bench_commit_floor').catch(() => {});
    await client.end();
  }
}

/** Both measurements. `databaseUrl` (an empty database) or a throwaway embedded cluster. */
export async function runAwsBench({ iterations = 1000, grantIterations = 500, databaseUrl, brokerExecArgv = [] } = {}) {
  Object.assign(process.env, BROKER_AWS_ENV);
  const sts = await startBenchSts();
  let cluster;
  try {
    const provider = await measureProvider(sts.url, iterations);
    if (grantIterations === 0) return { provider };
    let url = databaseUrl;
    if (!url) {
      cluster = await startCluster();
      url = await cluster.createDatabase('latchkey_bench_aws');
    }
    const grants = await measureGrants(sts.url, url, grantIterations, brokerExecArgv);
    const skeleton = await measureSkeleton(sts.url, url, grantIterations);
    const durableCommit = await measureDurableCommit(url, 500);
    return { provider, grants, skeleton, durableCommit };
  } finally {
    await sts.close();
    await cluster?.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const grantIterations = process.env.LATCHKEY_BENCH_AWS_GRANTS === undefined ? 500 : Number(process.env.LATCHKEY_BENCH_AWS_GRANTS);
  const brokerExecArgv = process.env.LATCHKEY_BENCH_BROKER_ARGS?.split(' ').filter(Boolean) ?? [];
  const result = await runAwsBench({ databaseUrl: process.env.LATCHKEY_BENCH_DATABASE_URL, grantIterations, brokerExecArgv });
  console.log(JSON.stringify(result, null, 2));
}
