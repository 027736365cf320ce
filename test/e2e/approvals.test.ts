import { execFileSync } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIO } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { createDemoDatabase } from '../support/database.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { ManualClock } from '../../src/clock.js';

// Sensitive tables wait for another person's approval; the credential goes to the requester only.
describe('grants that need someone else’s approval', () => {
  const tag = randomBytes(4).toString('hex');
  const database = `lkappr_${tag}`;
  const envVar = `LK_APPR_PG_${tag}`;
  let t: TestBroker;

  beforeAll(async () => {
    await createDemoDatabase(database, envVar);
    t = await startTestBroker({
      configure: (sso) => ({
        issuers: [{ name: 'sso', issuer: sso.url, audience: sso.audience, allow_insecure_http: true, subject_claim: 'email' }],
        targets: {
          warehouse: { kind: 'postgres', admin_url_env: envVar, sslmode: 'disable', databases: [database], tables: ['demo.*'], marker_role: `lkm_appr_${tag}` },
          mesh: { kind: 'certificate', trust_domain: 'example.org' },
        },
        rules: [
          { name: 'mesh-with-approval', issuer: 'sso', when: { groups: { contains: 'analytics' } }, allow: [{ kind: 'certificate', target: 'mesh', spiffe_id: 'spiffe://{trust_domain}/user/{team}', require_approval: true }] },
          {
          name: 'payments-with-approval', issuer: 'sso', when: { groups: { contains: 'analytics' }, amr: { contains: 'hwk' } },
          allow: [{ kind: 'postgres', target: 'warehouse', databases: [database], tables: ['demo.payments'], require_approval: true }],
        }],
        roles: { approver: [{ issuer: 'sso', when: { groups: { contains: 'approvers' } } }] },
      }),
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  const analyst = () => t.issuer.ssoToken({ email: 'ana@example.com', groups: ['analytics', 'approvers'] });
  const approver = () => t.issuer.ssoToken({ email: 'bo@example.com', groups: ['approvers'] });
  const request = async () =>
    t.call('POST', '/v1/grants', { token: await analyst(), body: { kind: 'postgres', target: 'warehouse', scope: { database, tables: ['demo.payments'] }, reason: 'INC-42' } });

  it('waits for approval, refuses self-approval, and issues to the requester once approved', async () => {
    const pending = await request();
    expect(pending.status).toBe(202);
    expect(pending.body).toMatchObject({ status: 'pending_approval', reason: 'INC-42' });
    expect(pending.body.credential).toBeUndefined();
    const id = pending.body.id as string;

    // The requester holds the approver role too, but may not approve its own grant.
    const self = await t.call('POST', `/v1/grants/${id}/approve`, { token: await analyst() });
    expect(self.status).toBe(403);
    expect(self.body.detail).toContain('someone other than its requester');
    // Claiming before approval is a conflict.
    expect((await t.call('POST', `/v1/grants/${id}/claim`, { token: await analyst() })).status).toBe(409);

    const queue = await t.call('GET', '/v1/grants/pending', { token: await approver() });
    expect(queue.body.grants.map((g: { id: string }) => g.id)).toContain(id);
    const approved = await t.call('POST', `/v1/grants/${id}/approve`, { token: await approver(), body: { note: 'looked at INC-42' } });
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ status: 'approved', approvedBy: 'sso:bo@example.com' });
    expect(approved.body.credential).toBeUndefined();

    // Someone else cannot collect it.
    expect((await t.call('POST', `/v1/grants/${id}/claim`, { token: await approver() })).status).toBe(404);
    const claimed = await t.call('POST', `/v1/grants/${id}/claim`, { token: await analyst() });
    expect(claimed.status).toBe(201);
    const client = new pg.Client({ connectionString: claimed.body.credential.uri });
    await client.connect();
    expect((await client.query('SELECT count(*)::int AS n FROM demo.payments')).rows[0].n).toBeGreaterThan(0);
    await client.end();
    expect((await t.call('POST', `/v1/grants/${id}/claim`, { token: await analyst() })).status).toBe(409);

    const events = await t.broker.context.db.query('SELECT type FROM audit_events WHERE grant_id = $1 ORDER BY seq', [id]);
    expect(events.rows.map((r) => r.type)).toEqual(['grant.pending_approval', 'grant.approved', 'grant.requested', 'grant.issued']);
  });

  it('re-checks the policy at claim time: a token that no longer qualifies cannot collect', async () => {
    const pending = await request();
    await t.call('POST', `/v1/grants/${pending.body.id}/approve`, { token: await approver() });
    const withoutHardwareKey = await t.issuer.ssoToken({ email: 'ana@example.com', groups: ['analytics'], amr: ['pwd'] });
    const refused = await t.call('POST', `/v1/grants/${pending.body.id}/claim`, { token: withoutHardwareKey });
    expect(refused.status).toBe(403);
    expect(refused.body.detail).toContain('no longer allows it');
    expect((await t.call('GET', `/v1/grants/${pending.body.id}`, { token: await analyst() })).body.status).toBe('approved');
  });

  it('issues an approved certificate only for the very CSR that was approved', async () => {
    const make = () => execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=x'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    const csr = make();
    const token = async () => t.issuer.ssoToken({ email: 'ana@example.com', groups: ['analytics'], team: 'data' });
    const pending = await t.call('POST', '/v1/grants', { token: await token(), body: { kind: 'certificate', target: 'mesh', scope: { csr } } });
    expect(pending.status).toBe(202);
    expect(JSON.stringify(pending.body)).not.toContain('BEGIN CERTIFICATE REQUEST');
    await t.call('POST', `/v1/grants/${pending.body.id}/approve`, { token: await approver() });
    const other = await t.call('POST', `/v1/grants/${pending.body.id}/claim`, { token: await token(), body: { scope: { csr: make() } } });
    expect(other.status).toBe(400);
    expect(other.body.detail).toContain('not the one that was approved');
    const claimed = await t.call('POST', `/v1/grants/${pending.body.id}/claim`, { token: await token(), body: { scope: { csr } } });
    expect(claimed.status).toBe(201);
    expect(new X509Certificate(claimed.body.credential.certificate).subjectAltName).toBe('URI:spiffe://example.org/user/data');
  });

  it('ends a denied request for good', async () => {
    const pending = await request();
    const denied = await t.call('POST', `/v1/grants/${pending.body.id}/deny`, { token: await approver() });
    expect(denied.body).toMatchObject({ status: 'denied', endReason: 'approval_denied' });
    expect((await t.call('POST', `/v1/grants/${pending.body.id}/claim`, { token: await analyst() })).status).toBe(409);
  });

  it('lets an approver find, approve and the requester collect a grant from the command line', async () => {
    const run = async (args: string[], token: string) => {
      let stdout = '';
      let stderr = '';
      const io: CliIO = { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: { LATCHKEY_URL: t.url, LATCHKEY_TOKEN: token }, cwd: process.cwd() };
      const code = await main(args, io);
      return { code, stdout, stderr };
    };
    const pending = await request();
    const id = pending.body.id as string;
    const me = await run(['whoami'], await approver());
    expect(me.stdout).toContain('bo@example.com (issuer sso); roles: approver');
    const queue = await run(['pending'], await approver());
    expect(queue.stdout).toMatch(new RegExp(`${id}  pending_approval .* by ana@example.com  "INC-42"`));
    expect((await run(['approve', id, '--note', 'ok'], await approver())).stdout).toBe(`grant ${id}: approved\n`);
    const mine = await run(['grants'], await analyst());
    expect(mine.stdout).toContain(`${id}  approved`);
    const collected = await run(['grant', 'postgres', '--claim', id, '--format', 'json'], await analyst());
    expect(collected.code).toBe(0);
    expect(JSON.parse(collected.stdout)).toMatchObject({ database });
  });

  it('tells a CLI user who must act and how to collect the login (exit 3)', async () => {
    let stdout = '';
    let stderr = '';
    const io: CliIO = {
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
      env: { LATCHKEY_URL: t.url, LATCHKEY_TOKEN: await analyst() },
      cwd: process.cwd(),
    };
    const code = await main(['grant', 'postgres', '--target', 'warehouse', '--database', database, '--table', 'demo.payments'], io);
    expect(code).toBe(3);
    const id = stdout.trim();
    expect(stderr).toContain(`latchkey approve ${id}`);
    expect(stderr).toContain(`latchkey grant postgres --claim ${id}`);
  });
});

// Approvers are people: the wait for one must not eat the credential's lifetime.
describe('the approval window and the credential lifetime', () => {
  const clock = new ManualClock(new Date());
  let t: TestBroker;

  beforeAll(async () => {
    t = await startTestBroker({
      clock,
      configure: (sso) => ({
        server: { approval_window: '30m' },
        issuers: [{ name: 'sso', issuer: sso.url, audience: sso.audience, allow_insecure_http: true, subject_claim: 'email' }],
        targets: { mesh: { kind: 'certificate', trust_domain: 'example.org' } },
        rules: [{ name: 'mesh-with-approval', issuer: 'sso', when: { groups: { contains: 'analytics' } }, allow: [{ kind: 'certificate', target: 'mesh', spiffe_id: 'spiffe://{trust_domain}/user/{team}', max_ttl: '10m', require_approval: true }] }],
        roles: { approver: [{ issuer: 'sso', when: { groups: { contains: 'approvers' } } }] },
      }),
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  const minutes = (n: number) => n * 60_000;
  const analyst = () => t.issuer.ssoToken({ email: 'ana@example.com', groups: ['analytics'], team: 'data' });
  const approver = () => t.issuer.ssoToken({ email: 'bo@example.com', groups: ['approvers'] });
  const request = async () => t.call('POST', '/v1/grants', { token: await analyst(), body: { kind: 'certificate', target: 'mesh', scope: { generate: true } } });

  it('waits up to the approval window, and the credential’s lifetime starts when it is claimed', async () => {
    const requestedAt = clock.now().getTime();
    const pending = await request();
    expect(pending.status).toBe(202);
    expect(Date.parse(pending.body.expiresAt)).toBe(requestedAt + minutes(30));

    clock.advance(minutes(20)); // longer than the credential itself may live
    expect((await t.call('POST', `/v1/grants/${pending.body.id}/approve`, { token: await approver() })).status).toBe(200);
    clock.advance(minutes(5));
    const claimedAt = clock.now().getTime();
    const claimed = await t.call('POST', `/v1/grants/${pending.body.id}/claim`, { token: await analyst() });
    expect(claimed.status).toBe(201);
    expect(Date.parse(claimed.body.expiresAt)).toBe(claimedAt + minutes(10));
    // notAfter is written to the second.
    expect(Date.parse(new X509Certificate(claimed.body.credential.certificate).validTo)).toBe(Math.floor((claimedAt + minutes(10)) / 1000) * 1000);
  });

  it('warns at the request when the rule will cut the credential’s ttl, not about the approval window', async () => {
    const pending = await t.call('POST', '/v1/grants', { token: await analyst(), body: { kind: 'certificate', target: 'mesh', ttl: '20m', scope: { generate: true } } });
    expect(pending.status).toBe(202);
    expect(pending.body.warnings).toEqual(['ttl: asked for 20m; rule mesh-with-approval allows at most 10m, so this grant lasts 10m']);
  });

  it('cannot be claimed once the approval window has passed, approved or not', async () => {
    const pending = await request();
    await t.call('POST', `/v1/grants/${pending.body.id}/approve`, { token: await approver() });
    clock.advance(minutes(31));
    const late = await t.call('POST', `/v1/grants/${pending.body.id}/claim`, { token: await analyst() });
    expect(late.status).toBe(409);
    expect(late.body.detail).toBe(`grant ${pending.body.id} was not claimed within its approval window, which ended at ${pending.body.expiresAt}`);
  });
});
