import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLatchkeyError } from '../../../src/errors.js';
import type { CertificateAllow, CertificateScope } from '../../../src/providers/certificate/index.js';
import type { TargetProvider } from '../../../src/providers/provider.js';
import { credentialOf, hasOpenssl, issue, makeCsr, makeKey, openDevTarget, openssl, scratchDir, x509, type TestKeyType } from './support.js';

let dir: Awaited<ReturnType<typeof scratchDir>>;
let ecCa: TargetProvider<CertificateAllow, CertificateScope>;
let rsaCa: TargetProvider<CertificateAllow, CertificateScope>;

beforeAll(async () => {
  dir = await scratchDir();
  ecCa = await openDevTarget(`${dir.path}/ec`, 'ec-p256');
  rsaCa = await openDevTarget(`${dir.path}/rsa`, 'rsa-2048');
});
afterAll(() => dir.remove());

async function refusal(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (err) {
    if (isLatchkeyError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected the request to be refused');
}

describe.skipIf(!hasOpenssl)('certificates from CSRs', () => {
  describe.each([
    ['an ECDSA CA', () => ecCa],
    ['an RSA CA', () => rsaCa],
  ])('signed by %s', (_label, provider) => {
    it.each(['rsa-2048', 'rsa-3072', 'ec-p256'] as const)('a %s CSR gets a certificate that openssl verifies against the trust bundle', async (keyType) => {
      const csr = await makeCsr(dir, makeKey(keyType));
      const cert = credentialOf(await issue(provider(), { scope: { csr } }));
      const bundle = await dir.file(`bundle-${keyType}.pem`, cert.trustBundle);
      const leaf = await dir.file(`leaf-${keyType}.pem`, cert.certificate);
      const verified = await openssl(['verify', '-CAfile', bundle, '-purpose', 'sslclient', leaf]);
      expect(verified.output).toContain(': OK');
      expect(verified.code).toBe(0);
      expect(x509(cert.certificate).publicKey.asymmetricKeyType).toBe(keyType === 'ec-p256' ? 'ec' : 'rsa');
    });
  });

  it('a CSR asking for extra SANs and CA:TRUE gets only what the rule allows', async () => {
    const csr = await makeCsr(dir, makeKey('ec-p256'), {
      subject: '/CN=admin.example.com/O=Evil',
      addext: [
        'subjectAltName=DNS:admin.example.com,URI:spiffe://latchkey.test/team/admins/root,IP:10.0.0.1',
        'basicConstraints=critical,CA:TRUE',
        'keyUsage=critical,keyCertSign,cRLSign',
        'extendedKeyUsage=serverAuth,codeSigning',
      ],
    });
    const issued = credentialOf(await issue(ecCa, { scope: { csr } }));
    const cert = x509(issued.certificate);
    expect(cert.subjectAltName).toBe('URI:spiffe://latchkey.test/team/payments/alice');
    expect(cert.ca).toBe(false);
    expect(cert.subject).toBe('CN=spiffe://latchkey.test/team/payments/alice');
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']); // clientAuth only
    const text = (await openssl(['x509', '-noout', '-text', '-in', await dir.file('evil.pem', issued.certificate)])).output;
    expect(text).toContain('CA:FALSE');
    expect(text).not.toContain('Certificate Sign');
    expect(text).not.toContain('admin');
  });

  it('accepts an RSA-PSS signed CSR', async () => {
    const csr = await makeCsr(dir, makeKey('rsa-2048'), { sigopt: ['rsa_padding_mode:pss', 'rsa_pss_saltlen:32'] });
    expect(csr).toContain('BEGIN CERTIFICATE REQUEST');
    const cert = credentialOf(await issue(ecCa, { scope: { csr } }));
    expect(x509(cert.certificate).subjectAltName).toContain('spiffe://');
  });

  it.each<[string, TestKeyType, RegExp]>([
    ['a 1024-bit RSA key', 'rsa-1024', /RSA key of 1024 bits is not accepted/],
    ['a P-384 key', 'ec-p384', /ECDSA key on P-384 is not accepted/],
    ['a secp256k1 key', 'secp256k1', /ECDSA key on secp256k1 is not accepted/],
  ])('refuses a CSR with %s as invalid_csr', async (_label, keyType, message) => {
    const csr = await makeCsr(dir, makeKey(keyType));
    const refused = await refusal(issue(ecCa, { scope: { csr } }));
    expect(refused.code).toBe('invalid_csr');
    expect(refused.message).toMatch(message);
  });

  it('refuses a CSR whose signature does not verify (proof of possession)', async () => {
    const csr = await makeCsr(dir, makeKey('ec-p256'), { subject: '/CN=aaaaaaaa' });
    const der = Buffer.from(csr.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const at = der.indexOf(Buffer.from('aaaaaaaa'));
    der[at] = 'b'.charCodeAt(0); // the subject changes after signing
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const refused = await refusal(issue(ecCa, { scope: { csr: tampered } }));
    expect(refused).toEqual({ code: 'invalid_csr', message: expect.stringMatching(/signature does not verify/) });
  });

  it('refuses a CSR signed by a different key than the one it carries', async () => {
    const carried = await makeCsr(dir, makeKey('rsa-2048'));
    const other = await makeCsr(dir, makeKey('rsa-2048'));
    // Same structure and lengths: swap the signature of one request into the other.
    const a = Buffer.from(carried.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const b = Buffer.from(other.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    b.subarray(b.length - 256).copy(a, a.length - 256);
    const swapped = `-----BEGIN CERTIFICATE REQUEST-----\n${a.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    expect((await refusal(issue(rsaCa, { scope: { csr: swapped } }))).code).toBe('invalid_csr');
  });

  it.each([
    ['text that is not PEM', 'hello, please sign me'],
    ['a PEM block of another type', '-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n'],
    ['base64 garbage', '-----BEGIN CERTIFICATE REQUEST-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE REQUEST-----\n'],
    ['an empty CSR body', '-----BEGIN CERTIFICATE REQUEST-----\n\n-----END CERTIFICATE REQUEST-----\n'],
  ])('refuses %s as invalid_csr', async (_label, csr) => {
    const refused = await refusal(issue(ecCa, { scope: { csr } }));
    expect(refused.code).toBe('invalid_csr');
    expect(refused.message).toMatch(/^invalid CSR: /);
  });
});
