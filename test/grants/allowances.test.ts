import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { githubIssuer, startTestBroker, type TestBroker } from '../support/broker.js';

// One rule with two allowances for the same certificate target: EC keys get one
// identity, RSA keys another. The grant must use the allowance the policy matched.
describe('a rule with two allowances for one target', () => {
  let t: TestBroker;

  beforeAll(async () => {
    t = await startTestBroker({
      configure: (gh) => ({
        issuers: [githubIssuer(gh)],
        targets: { mesh: { kind: 'certificate', trust_domain: 'example.org' } },
        rules: [
          {
            name: 'two-allowances',
            issuer: 'gh',
            when: { repository_id: '74', repository_owner_id: '65' },
            allow: [
              { kind: 'certificate', target: 'mesh', key_types: ['ec-p256'], spiffe_id: 'spiffe://{trust_domain}/ec/{repository_id}', max_ttl: '10m' },
              { kind: 'certificate', target: 'mesh', key_types: ['rsa-2048'], spiffe_id: 'spiffe://{trust_domain}/rsa/{repository_id}', max_ttl: '5m' },
            ],
          },
        ],
      }),
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it.each([
    ['ec-p256', 'URI:spiffe://example.org/ec/74', 600],
    ['rsa-2048', 'URI:spiffe://example.org/rsa/74', 300],
  ])('grants a %s key with the identity and lifetime of the allowance that allows it', async (keyType, san, maxSeconds) => {
    const scope = { generate: true, keyType };
    const explained = await t.call('POST', '/v1/explain', { token: await t.issuer.githubToken(), body: { kind: 'certificate', target: 'mesh', scope } });
    expect(explained.body.allowed).toBe(true);

    const res = await t.call('POST', '/v1/grants', { token: await t.issuer.githubToken(), body: { kind: 'certificate', target: 'mesh', scope } });
    expect(res.status).toBe(201);
    const cert = new X509Certificate(res.body.credential.certificate);
    expect(cert.subjectAltName).toBe(san);
    expect(Date.parse(res.body.expiresAt) - Date.now()).toBeLessThanOrEqual(maxSeconds * 1000);
  });
});
