import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { githubIssuer, startTestBroker, type TestBroker } from '../support/broker.js';

describe('a caller over its grant rate', () => {
  let t: TestBroker;
  beforeAll(async () => {
    t = await startTestBroker({
      configure: (gh) => ({
        server: { rate_limit: { per_minute: 1, burst: 2 } },
        issuers: [githubIssuer(gh)],
        targets: { mesh: { kind: 'certificate', trust_domain: 'example.org' } },
        rules: [{ name: 'r', issuer: 'gh', when: { repository_id: '74' }, allow: [{ kind: 'certificate', target: 'mesh', spiffe_id: 'spiffe://{trust_domain}/gh/{repository_id}' }] }],
      }),
    });
  });
  afterAll(async () => t?.close());

  it('gets 429 with Retry-After once its burst is spent, and the refusal is audited', async () => {
    const ask = async () => t.call('POST', '/v1/grants', { token: await t.issuer.githubToken(), body: { kind: 'certificate', target: 'mesh', scope: { generate: true } } });
    expect((await ask()).status).toBe(201);
    expect((await ask()).status).toBe(201);
    const third = await ask();
    expect(third.status).toBe(429);
    expect(third.body.code).toBe('rate_limited');
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);
    const other = await t.call('POST', '/v1/grants', { token: await t.issuer.githubToken({ sub: 'repo:octo-org/other:ref:refs/heads/main' }), body: { kind: 'certificate', target: 'mesh', scope: { generate: true } } });
    expect(other.status).toBe(201);
    const rows = await t.broker.context.db.query("SELECT body FROM audit_events WHERE type = 'grant.denied'");
    expect(rows.rows.map((r) => JSON.parse(r.body).error?.code)).toEqual(['rate_limited']);
  });

  it('counts requests whose body is not a grant request too: over the budget, they get 429', async () => {
    const sub = 'repo:octo-org/noisy:ref:refs/heads/main';
    const malformed = async () => t.call('POST', '/v1/grants', { token: await t.issuer.githubToken({ sub }), body: { kind: 5 } });
    expect((await malformed()).status).toBe(400);
    expect((await malformed()).status).toBe(400);
    const third = await malformed();
    expect(third.status).toBe(429);
    expect(third.body.code).toBe('rate_limited');
  });
});
