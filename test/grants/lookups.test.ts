import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { githubIssuer, startTestBroker, type TestBroker } from '../support/broker.js';

// Ids and names from the request are looked up only among what exists:
// never through the object prototype, never as a database error.
describe('looking up grants and targets named by the caller', () => {
  let t: TestBroker;

  beforeAll(async () => {
    t = await startTestBroker({
      configure: (gh) => ({
        issuers: [githubIssuer(gh)],
        targets: { mesh: { kind: 'certificate', trust_domain: 'example.org' } },
        rules: [
          {
            name: 'mesh-certs',
            issuer: 'gh',
            when: { repository_id: '74', repository_owner_id: '65' },
            allow: [{ kind: 'certificate', target: 'mesh', spiffe_id: 'spiffe://{trust_domain}/gh/{repository_id}', max_ttl: '10m' }],
          },
        ],
        roles: { approver: [{ issuer: 'gh', when: { repository_id: '74' } }] },
      }),
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it.each(['approve', 'deny'])('answers 404, not 500, to %s of a grant id that is not a uuid', async (verb) => {
    const res = await t.call('POST', `/v1/grants/not-a-uuid/${verb}`, { token: await t.issuer.githubToken(), body: {} });
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('not_found');
  });

  it.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty'])('answers 404 unknown target for a target named %s', async (name) => {
    const res = await t.call('POST', '/v1/grants', { token: await t.issuer.githubToken(), body: { kind: 'certificate', target: name, scope: { generate: true } } });
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('unknown_target');
  });
});
