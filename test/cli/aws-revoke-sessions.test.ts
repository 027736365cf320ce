import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AuditUnavailable } from '../../src/errors.js';
import { main } from '../../src/cli/main.js';
import { createApp } from '../../src/http/app.js';
import type { AppContext } from '../../src/http/context.js';
import { awsSessionRoutes } from '../../src/http/routes/aws-sessions.js';
import { callApi, type TestBroker } from '../support/broker.js';
import type { LocalSts, StsCredentials } from '../support/sts-server.js';
import { capturedIO, startAwsBroker } from '../providers/aws/support.js';

let sts: LocalSts;
let broker: StsCredentials;
let t: TestBroker;
const servers: Server[] = [];

/** The broker's app with the aws session routes mounted, as `createBroker` mounts them. */
async function serve(ctx: AppContext): Promise<string> {
  const server = createServer(createApp(ctx, [{ path: '/', router: awsSessionRoutes(ctx) }]));
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

let url: string;

beforeAll(async () => {
  ({ sts, broker, t } = await startAwsBroker());
  url = t.url; // the broker mounts the revoke-sessions route itself
});
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((ok) => s.close(() => ok()));
  }
  await t?.close();
  await sts?.close();
});
beforeEach(() => sts.reset());

async function sessionEvents(): Promise<{ outcome: string; body: string }[]> {
  const client = new pg.Client({ connectionString: t.databaseUrl });
  await client.connect();
  try {
    return (await client.query("SELECT outcome, body FROM audit_events WHERE type = 'aws.sessions_revoked' ORDER BY seq")).rows;
  } finally {
    await client.end();
  }
}

describe('latchkey aws revoke-sessions', () => {
  it('an admin denies every older session of the role, and the audit log records who did it before the answer', async () => {
    const before = (await sessionEvents()).length;
    const cli = capturedIO({ LATCHKEY_TOKEN: await t.issuer.githubToken({ workflow: 'break-glass' }) });
    const code = await main(['aws', 'revoke-sessions', '--url', url, '--target', 'prod-aws', '--role', 'deploy'], cli.io);
    expect(cli.stderr()).toBe('');
    expect(code).toBe(0);
    expect(cli.stdout()).toMatch(/^revoked every session of arn:aws:iam::123456789012:role\/ci\/deploy issued before \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z \(inline policy AWSRevokeOlderSessions\)\n$/);

    expect(sts.putRolePolicyCalls).toHaveLength(1);
    expect(sts.putRolePolicyCalls[0]).toMatchObject({ RoleName: 'deploy', PolicyName: 'AWSRevokeOlderSessions', signedBy: broker.accessKeyId });

    const events = (await sessionEvents()).slice(before);
    expect(events.map((e) => e.outcome)).toEqual(['intent', 'success']);
    const success = JSON.parse(events[1]!.body);
    expect(JSON.stringify(success)).toContain('arn:aws:iam::123456789012:role/ci/deploy');
    expect(JSON.stringify(success)).toContain('repo:octo-org/octo-repo');
  });

  it('anyone without the admin role is refused and nothing reaches IAM', async () => {
    const res = await callApi(url, 'POST', '/v1/targets/prod-aws/aws/revoke-sessions', { token: await t.issuer.githubToken(), body: { role: 'deploy' } });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('forbidden');
    expect(sts.putRolePolicyCalls).toHaveLength(0);
  });

  it('IAM refusing the broker is a 502 naming the role, recorded as an error', async () => {
    const before = (await sessionEvents()).length;
    sts.failNext('PutRolePolicy', 'AccessDenied');
    const res = await callApi(url, 'POST', '/v1/targets/prod-aws/aws/revoke-sessions', { token: await t.issuer.githubToken({ workflow: 'break-glass' }), body: { role: 'deploy' } });
    expect(res.status).toBe(502);
    expect(res.body.code).toBe('provider_misconfigured');
    expect(res.body.detail).toContain('iam:PutRolePolicy on arn:aws:iam::123456789012:role/ci/deploy');
    expect((await sessionEvents()).slice(before).map((e) => e.outcome)).toEqual(['intent', 'error']);
  });

  it.each([
    ['an unknown target', '/v1/targets/nope/aws/revoke-sessions', { role: 'deploy' }, 404, 'unknown_target'],
    ['an unknown role', '/v1/targets/prod-aws/aws/revoke-sessions', { role: 'nope' }, 400, 'invalid_scope'],
    ['a body without a role', '/v1/targets/prod-aws/aws/revoke-sessions', {}, 400, 'invalid_request'],
  ])('%s is refused with %s', async (_label, path, body, status, code) => {
    const res = await callApi(url, 'POST', path, { token: await t.issuer.githubToken({ workflow: 'break-glass' }), body });
    expect([res.status, res.body.code]).toEqual([status, code]);
    expect(sts.putRolePolicyCalls).toHaveLength(0);
  });

  it('with the audit log down, nothing is applied (fail closed)', async () => {
    const brokenAudit = { append: async () => Promise.reject(new AuditUnavailable('the audit log cannot be written')) };
    const downUrl = await serve({ ...t.broker.context, audit: brokenAudit } as AppContext);
    const res = await callApi(downUrl, 'POST', '/v1/targets/prod-aws/aws/revoke-sessions', { token: await t.issuer.githubToken({ workflow: 'break-glass' }), body: { role: 'deploy' } });
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('audit_unavailable');
    expect(sts.putRolePolicyCalls).toHaveLength(0);
  });
});
