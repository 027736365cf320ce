import { X509Certificate } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { capturedIO } from '../providers/aws/support.js';
import { TestOidcIssuer } from '../support/oidc-issuer.js';
import { githubIssuer, startTestBroker, type TestBroker } from '../support/broker.js';

// A GitHub deploy job of octo-org/octo-repo (repository_id 74, owner id 65) may get a
// client certificate; an SSO engineer in group "admins" is an admin, "auditors" an auditor.
describe('certificate grants over HTTP', () => {
  let t: TestBroker;
  let sso: TestOidcIssuer;

  beforeAll(async () => {
    sso = await TestOidcIssuer.start();
    t = await startTestBroker({
      configure: (gh) => ({
        issuers: [githubIssuer(gh), { name: 'sso', issuer: sso.url, audience: sso.audience, allow_insecure_http: true, subject_claim: 'email' }],
        targets: { mesh: { kind: 'certificate', trust_domain: 'example.org' } },
        rules: [
          {
            name: 'octo-repo-deploys',
            issuer: 'gh',
            when: { repository_id: '74', repository_owner_id: '65', ref: 'refs/heads/main', environment: 'prod', event_name: 'push', runner_environment: 'github-hosted' },
            allow: [{ kind: 'certificate', target: 'mesh', spiffe_id: 'spiffe://{trust_domain}/gh/{repository_id}/{environment}', max_ttl: '10m' }],
          },
        ],
        roles: {
          // The security team's tooling repository administers the broker from CI.
          admin: [
            { issuer: 'sso', when: { groups: { contains: 'admins' } } },
            { issuer: 'gh', when: { repository_id: '99', repository_owner_id: '77' } },
          ],
          auditor: [{ issuer: 'sso', when: { groups: { contains: 'auditors' } } }],
        },
      }),
    });
  });
  afterAll(async () => {
    await t?.close();
    await sso?.close();
  });

  async function auditRows(): Promise<{ type: string; outcome: string; grant_id: string | null; body: string }[]> {
    const client = new pg.Client({ connectionString: t.databaseUrl });
    await client.connect();
    try {
      return (await client.query('SELECT type, outcome, grant_id, body FROM audit_events ORDER BY seq')).rows;
    } finally {
      await client.end();
    }
  }

  it('gives the pinned repository a certificate whose identity comes from the rule, and records intent and result', async () => {
    const token = await t.issuer.githubToken();
    const res = await t.call('POST', '/v1/grants', { token, body: { kind: 'certificate', target: 'mesh', scope: { generate: true } } });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`/v1/grants/${res.body.id}`);
    expect(res.body).toMatchObject({ status: 'active', kind: 'certificate', target: 'mesh', rule: 'octo-repo-deploys' });
    const cert = new X509Certificate(res.body.credential.certificate);
    expect(cert.subjectAltName).toBe('URI:spiffe://example.org/gh/74/prod');
    expect(cert.checkIssued(new X509Certificate(res.body.credential.trustBundle))).toBe(true);
    // The rule caps the lifetime at 10 minutes.
    expect(Date.parse(res.body.expiresAt) - Date.now()).toBeLessThanOrEqual(600_000);
    expect(res.body.providerRef).toBe(res.body.credential.serial);

    const rows = (await auditRows()).filter((r) => r.grant_id === res.body.id);
    expect(rows.map((r) => [r.type, r.outcome])).toEqual([
      ['grant.requested', 'intent'],
      ['grant.issued', 'success'],
    ]);
    // Never a key or the token in the log; the serial is there for incident response.
    const issued = rows[1]!.body;
    expect(issued).toContain(res.body.credential.serial);
    expect(issued).not.toContain('PRIVATE KEY');
    expect(issued).not.toContain(token);
  });

  it('caps a ttl longer than the rule allows and says so in a warning; a ttl within it has none', async () => {
    const long = await t.call('POST', '/v1/grants', { token: await t.issuer.githubToken(), body: { kind: 'certificate', target: 'mesh', ttl: '2h', scope: { generate: true } } });
    expect(long.status).toBe(201);
    expect(Date.parse(long.body.expiresAt) - Date.parse(long.body.createdAt)).toBe(600_000);
    expect(long.body.warnings).toEqual(['ttl: asked for 2h; rule octo-repo-deploys allows at most 10m, so this grant lasts 10m']);

    const short = await t.call('POST', '/v1/grants', { token: await t.issuer.githubToken(), body: { kind: 'certificate', target: 'mesh', ttl: '5m', scope: { generate: true } } });
    expect(short.status).toBe(201);
    expect(Date.parse(short.body.expiresAt) - Date.parse(short.body.createdAt)).toBe(300_000);
    expect(short.body.warnings).toBeUndefined();
  });

  it('refuses a second use of the same token', async () => {
    const token = await t.issuer.githubToken();
    const body = { kind: 'certificate', target: 'mesh', scope: { generate: true } };
    expect((await t.call('POST', '/v1/grants', { token, body })).status).toBe(201);
    const again = await t.call('POST', '/v1/grants', { token, body });
    expect(again.status).toBe(401);
    expect(again.contentType).toContain('application/problem+json');
    expect(again.body.code).toBe('token_replayed');
  });

  it('denies a token from the wrong branch and tells its own repository which condition failed', async () => {
    const token = await t.issuer.githubToken({ ref: 'refs/heads/feature', environment: null });
    const res = await t.call('POST', '/v1/grants', { token, body: { kind: 'certificate', target: 'mesh', scope: { generate: true } } });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('policy_denied');
    expect(res.body.detail).toContain('refs/heads/feature');
    expect(res.body.explanation.evaluations[0]).toMatchObject({ rule: 'octo-repo-deploys', matched: false, failure: { field: 'ref', actual: 'refs/heads/feature' } });
    const denied = (await auditRows()).filter((r) => r.type === 'grant.denied').at(-1)!;
    expect(JSON.parse(denied.body).reasons[0].failure.field).toBe('ref');
  });

  it('shows another organisation nothing of the policy, but keeps the full reasons in the audit log', async () => {
    const token = await t.issuer.githubToken({ repository: 'evil/repo', repository_id: '666', repository_owner: 'evil', repository_owner_id: '13' });
    const res = await t.call('POST', '/v1/grants', { token, body: { kind: 'certificate', target: 'mesh', scope: { generate: true } } });
    expect(res.status).toBe(403);
    expect(JSON.stringify(res.body)).not.toContain('octo-repo-deploys');
    expect(res.body.explanation).toMatchObject({ evaluations: [], hiddenRules: 1 });
    const denied = (await auditRows()).filter((r) => r.type === 'grant.denied').at(-1)!;
    expect(JSON.parse(denied.body).reasons[0]).toMatchObject({ rule: 'octo-repo-deploys', failure: { field: 'repository_id' } });
  });

  it('records a request whose body is not a grant request as denied, with what was wrong', async () => {
    const token = await t.issuer.githubToken();
    const res = await t.call('POST', '/v1/grants', { token, body: { kind: 5, target: 'mesh' } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('invalid_request');
    const denied = (await auditRows()).filter((r) => r.type === 'grant.denied').at(-1)!;
    const event = JSON.parse(denied.body);
    expect(event).toMatchObject({ outcome: 'denied', issuer: 'gh', subject: expect.stringContaining('octo-org/octo-repo'), error: { code: 'invalid_request' } });
    expect(event.error.message).toContain('kind');
    expect(event.requestId).toBe(res.headers.get('x-request-id'));
    expect(denied.body).not.toContain(token);
  });

  it('keeps at most 1,000 characters of an error message in the audit log, however much of the request it echoes', async () => {
    const token = await t.issuer.githubToken();
    const unknownKeys = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`unknown_field_${i}`, 1]));
    const res = await t.call('POST', '/v1/grants', { token, body: { kind: 'certificate', target: 'mesh', ...unknownKeys } });
    expect(res.status).toBe(400);
    const denied = (await auditRows()).filter((r) => r.type === 'grant.denied').at(-1)!;
    const message = JSON.parse(denied.body).error.message as string;
    expect(message.length).toBe(1000);
    expect(message.startsWith('invalid request body: ')).toBe(true);
    expect(message.endsWith('…')).toBe(true);
  });

  it('records a refused token with the check that failed and where the request came from, never the token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await t.issuer.githubToken({ iat: now - 1200, nbf: now - 1200, exp: now - 600 });
    const res = await t.call('POST', '/v1/grants', { token, body: { kind: 'certificate', target: 'mesh', scope: { generate: true } } });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('token_expired');
    const rejected = (await auditRows()).filter((r) => r.type === 'token.rejected').at(-1)!;
    const event = JSON.parse(rejected.body);
    expect(event).toMatchObject({ outcome: 'denied', error: { code: 'token_expired' }, requestId: res.headers.get('x-request-id') });
    expect(event.clientAddress).toMatch(/127\.0\.0\.1$/);
    expect(rejected.body).not.toContain(token);
  });

  it('latchkey explain tells its own repository which condition failed, with expected and actual, and exits 1', async () => {
    const token = await t.issuer.githubToken({ ref: 'refs/heads/feature', environment: null });
    const cli = capturedIO({});
    const code = await main(['explain', '--url', t.url, '--token', token, '--kind', 'certificate', '--target', 'mesh', '--scope', '{"generate":true}'], cli.io);
    expect(code).toBe(1);
    const lines = cli.stdout().trim().split('\n');
    expect(lines[0]).toMatch(/^DENIED: /);
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}✗ octo-repo-deploys: .*\(expected "refs\/heads\/main", got "refs\/heads\/feature"\)$/));
  });

  it('latchkey explain tells another organisation only that rules it may not see exist', async () => {
    const token = await t.issuer.githubToken({ repository: 'evil/repo', repository_id: '666', repository_owner: 'evil', repository_owner_id: '13' });
    const cli = capturedIO({});
    const code = await main(['explain', '--url', t.url, '--token', token, '--kind', 'certificate', '--target', 'mesh', '--scope', '{"generate":true}'], cli.io);
    expect(code).toBe(1);
    expect(cli.stdout()).not.toContain('octo-repo-deploys');
    expect(cli.stdout()).toContain('(1 rule(s) that do not concern this token are not shown)');
  });

  it('shows an admin from another organisation the rules it would hide from anyone else there', async () => {
    const admin = await t.issuer.githubToken({ repository: 'sec-org/tools', repository_id: '99', repository_owner: 'sec-org', repository_owner_id: '77' });
    const res = await t.call('POST', '/v1/explain', { token: admin, body: { kind: 'certificate', target: 'mesh', scope: { generate: true } } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ allowed: false, hiddenRules: 0 });
    expect(res.body.evaluations).toEqual([expect.objectContaining({ rule: 'octo-repo-deploys', matched: false, failure: expect.objectContaining({ field: 'repository_id', actual: '99' }) })]);
  });

  it('answers malformed requests with a 400 that names the field', async () => {
    const token = await t.issuer.githubToken();
    const res = await t.call('POST', '/v1/grants', { token, body: { kind: 'certificate', target: 'mesh', scope: { generate: true, keyType: 'dsa-1024' } } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('invalid_scope');
    expect(res.body.detail).toContain('scope.keyType');
    const notJson = await t.call('POST', '/v1/grants', { token: await t.issuer.githubToken(), body: '{"kind":', headers: { 'content-type': 'application/json' } });
    expect(notJson.status).toBe(400);
    expect(notJson.contentType).toContain('application/problem+json');
    const unknown = await t.call('POST', '/v1/grants', { token: await t.issuer.githubToken(), body: { kind: 'certificate', target: 'nope', scope: {} } });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('unknown_target');
  });

  it('refuses a body over the size limit with a 413 before reading the token', async () => {
    const res = await t.call('POST', '/v1/grants', { token: await t.issuer.githubToken(), body: { kind: 'certificate', target: 'mesh', scope: { csr: 'x'.repeat(100_000) } } });
    expect(res.status).toBe(413);
    expect(res.body.code).toBe('body_too_large');
  });

  it('refuses requests without a token, with a request id on the problem', async () => {
    const res = await t.call('POST', '/v1/grants', { body: { kind: 'certificate', target: 'mesh' } });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('token_missing');
    expect(res.body.requestId).toBe(res.headers.get('x-request-id'));
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('lets the owner read and revoke its grant, hides it from others, and lets an admin revoke', async () => {
    const issued = await t.call('POST', '/v1/grants', { token: await t.issuer.githubToken(), body: { kind: 'certificate', target: 'mesh', scope: { generate: true } } });
    const id = issued.body.id as string;
    const stranger = await t.issuer.githubToken({ repository: 'other/repo', repository_id: '1', sub: 'repo:other/repo:ref:refs/heads/main' });
    expect((await t.call('GET', `/v1/grants/${id}`, { token: stranger })).status).toBe(404);
    expect((await t.call('DELETE', `/v1/grants/${id}`, { token: stranger })).status).toBe(404);
    const mine = await t.call('GET', `/v1/grants/${id}`, { token: await t.issuer.githubToken() });
    expect(mine.body.status).toBe('active');
    expect(mine.body.credential).toBeUndefined(); // returned once, never again
    const revoked = await t.call('DELETE', `/v1/grants/${id}`, { token: await t.issuer.githubToken() });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ status: 'revoked', endReason: 'revoked' });

    const other = await t.call('POST', '/v1/grants', { token: await t.issuer.githubToken(), body: { kind: 'certificate', target: 'mesh', scope: { generate: true } } });
    const byAdmin = await t.call('DELETE', `/v1/grants/${other.body.id}`, { token: await sso.ssoToken({ groups: ['admins'] }) });
    expect(byAdmin.body.status).toBe('revoked');
    expect(byAdmin.body.revokedBy).toMatch(/^sso:/);
  });

  it('returns no certificate when the audit log cannot be written, and records the grant as failed', async () => {
    const admin = new pg.Client({ connectionString: t.databaseUrl });
    await admin.connect();
    await admin.query('ALTER TABLE audit_events ADD CONSTRAINT audit_down CHECK (false) NOT VALID');
    try {
      const res = await t.call('POST', '/v1/grants', { token: await t.issuer.githubToken(), body: { kind: 'certificate', target: 'mesh', scope: { generate: true } } });
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('audit_unavailable');
      expect(JSON.stringify(res.body)).not.toContain('BEGIN');
      const failed = await admin.query("SELECT status, end_reason FROM grants ORDER BY created_at DESC LIMIT 1");
      expect(failed.rows[0]).toEqual({ status: 'failed', end_reason: 'audit_failed' });
    } finally {
      await admin.query('ALTER TABLE audit_events DROP CONSTRAINT audit_down');
      await admin.end();
    }
  });

  it('revokes a credential whose result record fails, and answers 503', async () => {
    const admin = new pg.Client({ connectionString: t.databaseUrl });
    await admin.connect();
    await admin.query("ALTER TABLE audit_events ADD CONSTRAINT result_down CHECK (type <> 'grant.issued') NOT VALID");
    try {
      const res = await t.call('POST', '/v1/grants', { token: await t.issuer.githubToken(), body: { kind: 'certificate', target: 'mesh', scope: { generate: true } } });
      expect(res.status).toBe(503);
      expect(res.body.credential).toBeUndefined();
      const failed = await admin.query("SELECT status, end_reason, provider_ref FROM grants ORDER BY created_at DESC LIMIT 1");
      expect(failed.rows[0]).toMatchObject({ status: 'failed', end_reason: 'audit_failed' });
    } finally {
      await admin.query('ALTER TABLE audit_events DROP CONSTRAINT result_down');
      await admin.end();
    }
  });

  it('serves the trust bundle, health, readiness, metrics without subjects, and the OpenAPI document', async () => {
    const ca = await t.call('GET', '/v1/ca?target=mesh');
    expect(ca.contentType).toContain('application/x-pem-file');
    expect(ca.body).toContain('BEGIN CERTIFICATE');
    expect((await t.call('GET', '/healthz')).status).toBe(200);
    const ready = await t.call('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.database).toBe('ok');
    const metrics = await t.call('GET', '/metrics');
    expect(metrics.body).toMatch(/latchkey_grants_total\{kind="certificate",outcome="granted"\} \d+/);
    expect(metrics.body).toMatch(/latchkey_tokens_rejected_total\{code="token_replayed"\} 1/);
    expect(metrics.body).not.toContain('octo-org');
    const openapi = await t.call('GET', '/openapi.json');
    expect(Object.keys(openapi.body.paths)).toContain('/v1/grants');
  });
});
