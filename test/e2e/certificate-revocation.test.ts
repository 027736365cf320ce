import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { githubIssuer, startTestBroker, type TestBroker } from '../support/broker.js';

// Revoking a certificate grant publishes its serial on the target's CRL, which real TLS peers enforce.
describe('certificate revocation through the CRL', () => {
  let t: TestBroker;
  let dir: string;
  const certs: Record<'revoked' | 'kept', { id: string; cert: string; key: string; serial: string }> = {} as never;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-crl-'));
    t = await startTestBroker({
      configure: (gh) => ({
        issuers: [githubIssuer(gh)],
        targets: { mesh: { kind: 'certificate', trust_domain: 'example.org' }, 'mesh-rsa': { kind: 'certificate', trust_domain: 'example.org', ca_key_type: 'rsa-2048' } },
        rules: [{
          name: 'r', issuer: 'gh', when: { repository_id: '74' },
          allow: [
            { kind: 'certificate', target: 'mesh', spiffe_id: 'spiffe://{trust_domain}/gh/{repository_id}', usages: ['client_auth', 'server_auth'] },
            { kind: 'certificate', target: 'mesh-rsa', spiffe_id: 'spiffe://{trust_domain}/gh/{repository_id}' },
          ],
        }],
      }),
    });
    for (const name of ['revoked', 'kept'] as const) {
      const res = await t.call('POST', '/v1/grants', { token: await t.issuer.githubToken(), body: { kind: 'certificate', target: 'mesh', scope: { generate: true } } });
      expect(res.status).toBe(201);
      certs[name] = { id: res.body.id, cert: res.body.credential.certificate, key: res.body.credential.privateKey, serial: res.body.credential.serial };
      writeFileSync(join(dir, `${name}.crt`), certs[name].cert);
    }
    writeFileSync(join(dir, 'ca.crt'), (await t.call('GET', '/v1/ca?target=mesh')).body);
    const revoked = await t.call('DELETE', `/v1/grants/${certs.revoked.id}`, { token: await t.issuer.githubToken() });
    expect(revoked.body.status).toBe('revoked');
    const crl = await fetch(`${t.url}/v1/ca/crl?target=mesh&format=pem`);
    expect(crl.headers.get('content-type')).toContain('application/x-pem-file');
    writeFileSync(join(dir, 'crl.pem'), await crl.text());
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists the revoked serial, not the kept one, in a CRL signed by the CA', () => {
    const text = execFileSync('openssl', ['crl', '-in', join(dir, 'crl.pem'), '-CAfile', join(dir, 'ca.crt'), '-noout', '-text'], { stderr: 'pipe' } as never).toString();
    expect(text).toContain(`Serial Number: ${certs.revoked.serial.toUpperCase()}`);
    expect(text).not.toContain(certs.kept.serial.toUpperCase());
    expect(text).toContain('X509v3 CRL Number');
    const verified = spawnSync('openssl', ['crl', '-in', join(dir, 'crl.pem'), '-CAfile', join(dir, 'ca.crt'), '-noout'], { encoding: 'utf8' });
    expect(`${verified.stdout}${verified.stderr}`).toMatch(/verify OK/);
  });

  it('makes openssl verify refuse the revoked certificate and accept the other', () => {
    const check = (name: string) =>
      spawnSync('openssl', ['verify', '-crl_check', '-CAfile', join(dir, 'ca.crt'), '-CRLfile', join(dir, 'crl.pem'), join(dir, `${name}.crt`)], { encoding: 'utf8' });
    const revoked = check('revoked');
    expect(revoked.status).not.toBe(0);
    expect(`${revoked.stdout}${revoked.stderr}`).toContain('certificate revoked');
    expect(check('kept').status).toBe(0);
  });

  it('makes a Node TLS server that loads the CRL refuse the revoked client in a real handshake', async () => {
    const ca = (await t.call('GET', '/v1/ca?target=mesh')).body as string;
    const crl = await (await fetch(`${t.url}/v1/ca/crl?target=mesh&format=pem`)).text();
    const server = tls.createServer({ cert: certs.kept.cert, key: certs.kept.key, ca, crl, requestCert: true, rejectUnauthorized: true }, (socket) => socket.end('hello'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const connect = (name: 'revoked' | 'kept') =>
      new Promise<string>((resolve) => {
        const socket = tls.connect({ host: '127.0.0.1', port, cert: certs[name].cert, key: certs[name].key, ca, checkServerIdentity: () => undefined }, () => undefined);
        let data = '';
        socket.on('data', (d) => (data += d));
        socket.on('end', () => resolve(data || 'closed'));
        socket.on('error', (err) => resolve(`error: ${err.message}`));
      });
    try {
      expect(await connect('kept')).toBe('hello');
      expect(await connect('revoked')).not.toBe('hello');
    } finally {
      server.close();
    }
  });

  it('serves the CRL as DER (application/pkix-crl) by default', async () => {
    const res = await fetch(`${t.url}/v1/ca/crl?target=mesh`);
    expect(res.headers.get('content-type')).toContain('application/pkix-crl');
    writeFileSync(join(dir, 'crl.der'), Buffer.from(await res.arrayBuffer()));
    const text = execFileSync('openssl', ['crl', '-inform', 'DER', '-in', join(dir, 'crl.der'), '-noout', '-text']).toString();
    expect(text).toContain(`Serial Number: ${certs.revoked.serial.toUpperCase()}`);
  });

  it('signs the CRL with an RSA CA too', async () => {
    const res = await t.call('POST', '/v1/grants', { token: await t.issuer.githubToken(), body: { kind: 'certificate', target: 'mesh-rsa', scope: { generate: true } } });
    await t.call('DELETE', `/v1/grants/${res.body.id}`, { token: await t.issuer.githubToken() });
    writeFileSync(join(dir, 'rsa-ca.crt'), (await t.call('GET', '/v1/ca?target=mesh-rsa')).body);
    writeFileSync(join(dir, 'rsa-crl.pem'), await (await fetch(`${t.url}/v1/ca/crl?target=mesh-rsa&format=pem`)).text());
    const verified = spawnSync('openssl', ['crl', '-in', join(dir, 'rsa-crl.pem'), '-CAfile', join(dir, 'rsa-ca.crt'), '-noout', '-text'], { encoding: 'utf8' });
    expect(`${verified.stdout}${verified.stderr}`).toMatch(/verify OK/);
    expect(verified.stdout).toContain(`Serial Number: ${(res.body.credential.serial as string).toUpperCase()}`);
  });

  it('answers 404 for a target that is not a certificate target', async () => {
    const res = await t.call('GET', '/v1/ca/crl?target=nope');
    expect(res.status).toBe(404);
  });
});
