import { X509Certificate, createPrivateKey } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLatchkeyError } from '../../../src/errors.js';
import type { CertificateAllow, CertificateScope } from '../../../src/providers/certificate/index.js';
import type { TargetProvider } from '../../../src/providers/provider.js';
import { credentialOf, hasOpenssl, issue, makeCsr, makeKey, openDevTarget, openssl, scratchDir } from './support.js';

let dir: Awaited<ReturnType<typeof scratchDir>>;
let ecCa: TargetProvider<CertificateAllow, CertificateScope>;
let rsaCa: TargetProvider<CertificateAllow, CertificateScope>;

beforeAll(async () => {
  dir = await scratchDir();
  ecCa = await openDevTarget(`${dir.path}/ec`, 'ec-p256');
  rsaCa = await openDevTarget(`${dir.path}/rsa`, 'rsa-2048');
});
afterAll(() => dir.remove());

async function x509Text(pem: string): Promise<string> {
  const { output } = await openssl(['x509', '-noout', '-text', '-in', await dir.file(`text-${Math.random()}.pem`, pem)]);
  return output;
}

/**
 * The extension headings of `openssl x509 -text`, in certificate order, with
 * their "critical" mark: every extension gets one, known or not (an unknown
 * one shows as its OID), so this is the complete list.
 */
function extensionHeadings(text: string): string[] {
  const start = text.indexOf('        X509v3 extensions:\n');
  if (start < 0) return [];
  const end = text.indexOf('\n    Signature Algorithm:', start);
  return text
    .slice(start, end)
    .split('\n')
    .filter((line) => /^ {12}\S/.test(line))
    .map((line) => line.trim());
}

/** The lines under an extension's heading in `openssl x509 -text`. */
function extensionBlock(text: string, heading: string): string {
  const at = text.indexOf(heading);
  if (at < 0) return '(absent)';
  return text.slice(at, text.indexOf('\n', text.indexOf('\n', at) + 1)).replace(/\s+/g, ' ').trim();
}

describe.skipIf(!hasOpenssl)('what openssl x509 -text shows of an issued certificate', () => {
  const issuedAt = new Date('2030-06-01T12:00:00.250Z');

  it('exactly the intended extensions, SANs, CA:FALSE, key usages and validity for a client certificate, whatever the CSR asks for', async () => {
    // The CSR asks for a CA certificate with other names and usages, and for an extension latchkey does not know.
    const csr = await makeCsr(dir, makeKey('ec-p256'), {
      addext: [
        'subjectAltName=DNS:evil.example,URI:spiffe://latchkey.test/team/admins/root',
        'basicConstraints=critical,CA:TRUE',
        'keyUsage=critical,keyCertSign,cRLSign',
        'extendedKeyUsage=codeSigning',
        'nsComment=asked for by the CSR',
        '1.3.6.1.4.1.55555.1=ASN1:UTF8String:asked for by the CSR',
      ],
    });
    const issued = await issue(ecCa, { scope: { csr }, issuedAt, ttlSeconds: 600 });
    const cert = credentialOf(issued);
    const text = await x509Text(cert.certificate);

    expect(text).toContain('Version: 3 (0x2)');
    expect(extensionHeadings(text)).toEqual([
      'X509v3 Basic Constraints: critical',
      'X509v3 Key Usage: critical',
      'X509v3 Extended Key Usage:',
      'X509v3 Subject Alternative Name:',
      'X509v3 Subject Key Identifier:',
      'X509v3 Authority Key Identifier:',
    ]);
    expect(extensionBlock(text, 'X509v3 Subject Alternative Name')).toBe('X509v3 Subject Alternative Name: URI:spiffe://latchkey.test/team/payments/alice');
    expect(extensionBlock(text, 'X509v3 Basic Constraints')).toBe('X509v3 Basic Constraints: critical CA:FALSE');
    expect(extensionBlock(text, 'X509v3 Key Usage')).toBe('X509v3 Key Usage: critical Digital Signature');
    expect(extensionBlock(text, 'X509v3 Extended Key Usage')).toBe('X509v3 Extended Key Usage: TLS Web Client Authentication');
    expect(text).toContain('Not Before: Jun  1 11:59:30 2030 GMT');
    expect(text).toContain('Not After : Jun  1 12:10:00 2030 GMT');
    expect(text).toContain('Subject: CN = spiffe://latchkey.test/team/payments/alice');
    expect(text).toContain('Signature Algorithm: ecdsa-with-SHA256');

    // SKI is the key's, AKI the CA's.
    const ca = new X509Certificate(cert.trustBundle);
    const caText = await x509Text(cert.trustBundle);
    const caKeyId = extensionBlock(caText, 'X509v3 Subject Key Identifier').split(': ')[1];
    expect(extensionBlock(text, 'X509v3 Authority Key Identifier')).toContain(caKeyId);
    expect(extensionBlock(text, 'X509v3 Subject Key Identifier')).not.toBe('(absent)');
    expect(new X509Certificate(cert.certificate).checkIssued(ca)).toBe(true);

    // openssl accepts this very certificate as a TLS client certificate from the CA, at a time it is valid.
    const verified = await openssl([
      'verify',
      '-x509_strict',
      '-purpose', 'sslclient',
      '-attime', String(Math.floor(issuedAt.getTime() / 1000)),
      '-CAfile', await dir.file('client-bundle.pem', cert.trustBundle),
      await dir.file('client.pem', cert.certificate),
    ]);
    expect(verified.output).toMatch(/: OK\n$/);
    expect(verified.code).toBe(0);

    expect(issued.providerRef).toBe(cert.serial);
    expect(issued.auditDetails).toEqual({
      serial: cert.serial,
      spiffe_id: 'spiffe://latchkey.test/team/payments/alice',
      dns_names: [],
      not_after: '2030-06-01T12:10:00.000Z',
      key_type: 'ec-p256',
      key_source: 'csr',
    });
  });

  it('serials are random, positive and at least 64 bits', async () => {
    const serials = new Set<string>();
    for (let i = 0; i < 20; i += 1) {
      const cert = credentialOf(await issue(ecCa, { scope: { generate: true } }));
      expect(new X509Certificate(cert.certificate).serialNumber.toLowerCase()).toBe(cert.serial);
      expect(cert.serial).toMatch(/^[4-7][0-9a-f]{31}$/); // 16 bytes, top bit clear (positive)
      serials.add(cert.serial);
    }
    expect(serials.size).toBe(20);
  });

  it('a server certificate carries the rule\'s DNS names from claims, lower-cased, and both usages an RSA key needs', async () => {
    const csr = await makeCsr(dir, makeKey('rsa-2048'), { addext: ['subjectAltName=DNS:evil.example'] });
    const cert = credentialOf(
      await issue(rsaCa, {
        allow: {
          spiffe_id: 'spiffe://{trust_domain}/service/{service}',
          dns_names: ['{service}.mesh.internal', 'localhost'],
          usages: ['server_auth', 'client_auth'],
        },
        scope: { csr },
        claims: { service: 'Orders' },
      }),
    );
    const text = await x509Text(cert.certificate);
    expect(extensionBlock(text, 'X509v3 Subject Alternative Name')).toBe(
      'X509v3 Subject Alternative Name: URI:spiffe://latchkey.test/service/Orders, DNS:orders.mesh.internal, DNS:localhost',
    );
    expect(extensionBlock(text, 'X509v3 Key Usage')).toBe('X509v3 Key Usage: critical Digital Signature, Key Encipherment');
    expect(extensionBlock(text, 'X509v3 Extended Key Usage')).toBe('X509v3 Extended Key Usage: TLS Web Server Authentication, TLS Web Client Authentication');
    expect(text).toContain('Signature Algorithm: sha256WithRSAEncryption');
  });

  it.each([
    ['an EC key for static ECDH', 'ec-p256', ['digital_signature', 'key_agreement'], 'Digital Signature, Key Agreement'],
    ['an RSA key that only signs (no TLS 1.2 RSA key exchange)', 'rsa-2048', ['digital_signature'], 'Digital Signature'],
  ] as const)('the key usages a rule names: %s', async (_what, keyType, keyUsages, shown) => {
    const cert = credentialOf(
      await issue(ecCa, {
        allow: { spiffe_id: 'spiffe://{trust_domain}/team/{team}/{sub}', key_types: [keyType], key_usages: [...keyUsages] },
        scope: { generate: true, keyType },
      }),
    );
    const text = await x509Text(cert.certificate);
    expect(extensionBlock(text, 'X509v3 Key Usage')).toBe(`X509v3 Key Usage: critical ${shown}`);
    const verified = await openssl(['verify', '-CAfile', await dir.file(`ku-${keyType}-bundle.pem`, cert.trustBundle), await dir.file(`ku-${keyType}.pem`, cert.certificate)]);
    expect(verified.code).toBe(0);
  });

  it('a SPIFFE ID longer than a CN may be leaves the subject empty and marks the SAN critical', async () => {
    const team = 'x'.repeat(60);
    const cert = credentialOf(await issue(ecCa, { scope: { generate: true }, claims: { sub: 'alice', team } }));
    const text = await x509Text(cert.certificate);
    expect(text).toMatch(/Subject: *\n/);
    expect(extensionBlock(text, 'X509v3 Subject Alternative Name')).toBe(`X509v3 Subject Alternative Name: critical URI:spiffe://latchkey.test/team/${team}/alice`);
    const verified = await openssl(['verify', '-CAfile', await dir.file('long-bundle.pem', cert.trustBundle), await dir.file('long.pem', cert.certificate)]);
    expect(verified.code).toBe(0);
  });
});

describe('broker-generated keys', () => {
  it.each(['ec-p256', 'rsa-2048', 'rsa-3072'] as const)('return a PKCS#8 %s key that belongs to the certificate', async (keyType) => {
    const cert = credentialOf(await issue(ecCa, { scope: { generate: true, keyType } }));
    expect(cert.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const key = createPrivateKey(cert.privateKey as string);
    expect(new X509Certificate(cert.certificate).checkPrivateKey(key)).toBe(true);
    expect(key.asymmetricKeyType).toBe(keyType === 'ec-p256' ? 'ec' : 'rsa');
  });

  it('a rule that does not allow generation refuses it at issue too', async () => {
    try {
      await issue(ecCa, { allow: { spiffe_id: 'spiffe://{trust_domain}/x/{sub}', allow_generate: false }, scope: { generate: true } });
      expect.unreachable();
    } catch (err) {
      expect(isLatchkeyError(err) && err.code).toBe('invalid_scope');
    }
  });
});

describe('lifecycle', () => {
  it('needs no action at expiry, revoking succeeds (twice), and the bundle is public', async () => {
    expect(ecCa.revokeOnExpiry).toBe(false);
    await ecCa.revoke({ grantId: 'g', providerRef: 'ab', reason: 'revoked' });
    await ecCa.revoke({ grantId: 'g', providerRef: 'ab', reason: 'revoked' });
    expect(await ecCa.ready()).toBe(true);
    expect(Object.keys(ecCa.publicInfo?.() ?? {})).toEqual(['trustBundle']);
  });
});
