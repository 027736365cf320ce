import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOG_REDACTION } from '../../src/secret.js';
import { createDemoDatabase } from '../support/database.js';
import { githubIssuer, startTestBroker, type TestBroker } from '../support/broker.js';

// The broker logs everything it does at trace level here; none of it may carry a secret.
describe('secrets never reach the logs or the audit log', () => {
  const tag = randomBytes(4).toString('hex');
  const database = `lknosec_${tag}`;
  const envVar = `LK_NOSEC_PG_${tag}`;
  let t: TestBroker;
  let logs = '';

  beforeAll(async () => {
    await createDemoDatabase(database, envVar);
    const sink = new Writable({ write(chunk, _enc, done) { logs += chunk.toString(); done(); } });
    t = await startTestBroker({
      configure: (gh) => ({
        issuers: [githubIssuer(gh)],
        targets: {
          mesh: { kind: 'certificate', trust_domain: 'example.org', ca_key_type: 'rsa-2048' },
          warehouse: { kind: 'postgres', admin_url_env: envVar, sslmode: 'disable', databases: [database], tables: ['demo.*'], marker_role: `lkm_nosec_${tag}` },
        },
        rules: [{
          name: 'ci', issuer: 'gh', when: { repository_id: '74' },
          allow: [
            { kind: 'certificate', target: 'mesh', spiffe_id: 'spiffe://{trust_domain}/gh/{repository_id}' },
            { kind: 'postgres', target: 'warehouse', databases: [database], tables: ['demo.orders'] },
          ],
        }],
      }),
      broker: { logger: pino({ level: 'trace', ...LOG_REDACTION }, sink) },
    });
  });
  afterAll(async () => t?.close());

  it('logs and audits grants, refusals and revocations without a token, password or private key', async () => {
    const secrets: string[] = [];
    const certToken = await t.issuer.githubToken();
    const cert = await t.call('POST', '/v1/grants', { token: certToken, body: { kind: 'certificate', target: 'mesh', scope: { generate: true, keyType: 'rsa-2048', pkcs12: true } } });
    expect(cert.status).toBe(201);
    secrets.push(certToken, cert.body.credential.privateKey, cert.body.credential.pkcs12, cert.body.credential.pkcs12Password);
    const pgToken = await t.issuer.githubToken();
    const login = await t.call('POST', '/v1/grants', { token: pgToken, body: { kind: 'postgres', target: 'warehouse', scope: { database, tables: ['demo.orders'] } } });
    expect(login.status).toBe(201);
    secrets.push(pgToken, login.body.credential.password, login.body.credential.uri);
    const replayed = await t.call('POST', '/v1/grants', { token: pgToken, body: { kind: 'postgres', target: 'warehouse', scope: { database, tables: ['demo.orders'] } } });
    expect(replayed.status).toBe(401);
    const denied = await t.call('POST', '/v1/grants', { token: await t.issuer.githubToken({ repository_id: '1' }), body: { kind: 'certificate', target: 'mesh', scope: { generate: true } } });
    expect(denied.status).toBe(403);
    await t.call('DELETE', `/v1/grants/${login.body.id}`, { token: await t.issuer.githubToken() });

    const audit = (await t.broker.context.db.query('SELECT body FROM audit_events')).rows.map((r) => r.body as string).join('\n');
    expect(logs.length).toBeGreaterThan(1000); // the logger really was writing
    expect(audit).toContain(login.body.credential.user); // identifiers an incident needs are there
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(10);
      // Any 24-character piece of a secret would be a leak (PEM lines, URI-embedded passwords).
      const clean = secret.replace(/-----[A-Z ]+-----|\s/g, '');
      const probe = clean.length <= 24 ? clean : clean.slice(Math.floor(clean.length / 2) - 12, Math.floor(clean.length / 2) + 12);
      expect(logs).not.toContain(probe);
      expect(audit).not.toContain(probe);
    }
    expect(logs).not.toContain('PRIVATE KEY');
    expect(audit).not.toContain('PRIVATE KEY');
  });
});
