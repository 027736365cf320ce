import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateKind, type CertificateAllow, type CertificateScope } from '../../../src/providers/certificate/index.js';
import type { TargetProvider } from '../../../src/providers/provider.js';
import { credentialOf, deps, hasOpenssl, issue, makeCsr, makeKey, openDevTarget, openssl, readUntilEnd, scratchDir, target, type CertificateCredential } from './support.js';

/**
 * PKCS#12 bundles of broker-generated keys, read by the real clients:
 * OpenSSL 3 without -legacy, and Node's TLS stack in a handshake.
 */

type Provider = TargetProvider<CertificateAllow, CertificateScope>;

let dir: Awaited<ReturnType<typeof scratchDir>>;
beforeAll(async () => {
  dir = await scratchDir();
});
afterAll(() => dir.remove());

const SERVER_ALLOWANCE = { spiffe_id: 'spiffe://{trust_domain}/service/{service}', dns_names: ['localhost'], usages: ['server_auth'] };

/** An operator's CA as openssl makes it: an ECDSA intermediate under an RSA root, so the chain mixes algorithms. */
async function intermediateTarget(): Promise<Provider> {
  const rootKey = await dir.file('root.key', makeKey('rsa-2048'));
  const rootCert = join(dir.path, 'root.crt');
  const root = await openssl(['req', '-x509', '-new', '-key', rootKey, '-subj', '/CN=pkcs12 test root', '-days', '30',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', rootCert]);
  if (root.code !== 0) throw new Error(root.output);

  const intermediateKeyPem = makeKey('ec-p256');
  const intermediateKey = await dir.file('intermediate.key', intermediateKeyPem);
  const intermediateCert = join(dir.path, 'intermediate.crt');
  const csr = await dir.file('intermediate.csr', await makeCsr(dir, intermediateKeyPem, { subject: '/CN=pkcs12 test intermediate' }));
  const ext = await dir.file('intermediate.ext', 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
  const signed = await openssl(['x509', '-req', '-in', csr, '-CA', rootCert, '-CAkey', rootKey, '-set_serial', '7', '-days', '30', '-extfile', ext, '-out', intermediateCert]);
  if (signed.code !== 0) throw new Error(signed.output);

  return certificateKind.open(
    'mesh',
    target({ trust_domain: 'latchkey.test', ca_cert_file: intermediateCert, ca_key_file: intermediateKey, chain_files: [rootCert] }),
    deps(join(dir.path, 'operator'), false),
  );
}

const pemCertificates = (text: string): X509Certificate[] =>
  (text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map((pem) => new X509Certificate(pem));
/** The SubjectPublicKeyInfo DER of a public key, or of a private key's public half. */
const spki = (key: KeyObject): Buffer => (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });

/**
 * A mutual-TLS handshake where the client presents the bundle (`pfx`) and the
 * server requires a client certificate chaining to the trust bundle; resolves
 * the DER of the certificates the server saw (leaf first).
 */
async function handshakeWithBundle(provider: Provider, client: CertificateCredential): Promise<Buffer[]> {
  const server = credentialOf(await issue(provider, { allow: SERVER_ALLOWANCE, scope: { generate: true }, claims: { service: 'orders' } }));
  const seen: Buffer[] = [];
  const listener = tls.createServer(
    { cert: [server.certificate, ...server.chain].join(''), key: server.privateKey as string, ca: server.trustBundle, requestCert: true, rejectUnauthorized: true },
    (socket) => {
      for (let cert = socket.getPeerCertificate(true); cert.raw !== undefined; cert = cert.issuerCertificate) {
        if (seen.some((raw) => raw.equals(cert.raw))) break; // the root points to itself
        seen.push(cert.raw);
      }
      socket.end('ok');
    },
  );
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const { port } = listener.address() as { port: number };
  try {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      secureContext: tls.createSecureContext({ pfx: Buffer.from(client.pkcs12 as string, 'base64'), passphrase: client.pkcs12Password as string, ca: client.trustBundle }),
    });
    expect(await readUntilEnd(socket)).toBe('ok');
    return seen;
  } finally {
    await new Promise<void>((resolve) => listener.close(() => resolve()));
  }
}

describe.skipIf(!hasOpenssl).each([
  ['an ECDSA development CA', () => openDevTarget(join(dir.path, 'ec'), 'ec-p256'), 0],
  ['an RSA development CA', () => openDevTarget(join(dir.path, 'rsa'), 'rsa-2048'), 0],
  ['an ECDSA intermediate under an RSA root', intermediateTarget, 1],
] as const)('PKCS#12 bundles from %s', (_label, open, chainLength) => {
  let provider: Provider;
  beforeAll(async () => {
    provider = await open();
  });

  it.each(['ec-p256', 'rsa-2048', 'rsa-3072'] as const)(
    'a %s key comes with an AES-256 bundle that OpenSSL 3 reads: the leaf and chain as issued, the key that belongs to the leaf',
    async (keyType) => {
      const issued = await issue(provider, { scope: { generate: true, keyType, pkcs12: true } });
      const cert = credentialOf(issued);
      expect(cert.pkcs12Password).toMatch(/^[A-Za-z0-9_-]{24}$/);
      expect(JSON.stringify(issued.auditDetails)).not.toContain(cert.pkcs12Password);
      const bundle = join(dir.path, `bundle-${keyType}-${Math.random().toString(36).slice(2)}.p12`);
      await writeFile(bundle, Buffer.from(cert.pkcs12 as string, 'base64'));

      const info = await openssl(['pkcs12', '-in', bundle, '-info', '-nodes', '-passin', `pass:${cert.pkcs12Password}`]);
      expect(info.code, info.output).toBe(0);
      // What OpenSSL 3 writes by default: a SHA-256 MAC, the key under PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC.
      expect(info.output).toContain('MAC: sha256, Iteration 2048\nMAC length: 32, salt length: 16\n');
      expect(info.output).toContain('Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256\n');

      // The certificates inside are the issued leaf and chain, byte for byte.
      const inside = pemCertificates(info.output).map((c) => c.raw);
      expect(cert.chain).toHaveLength(chainLength);
      const expected = [cert.certificate, ...cert.chain].map((pem) => new X509Certificate(pem).raw);
      expect(inside).toEqual(expected);

      // The one key inside is the leaf's, and it is paired with the leaf by localKeyID.
      const keys = info.output.match(/-----BEGIN PRIVATE KEY-----[\s\S]*?-----END PRIVATE KEY-----/g) ?? [];
      expect(keys).toHaveLength(1);
      const key = createPrivateKey(keys[0] as string);
      expect(key.asymmetricKeyType).toBe(keyType === 'ec-p256' ? 'ec' : 'rsa');
      expect(spki(key)).toEqual(spki(new X509Certificate(cert.certificate).publicKey));
      expect(spki(key)).toEqual(spki(createPrivateKey(cert.privateKey as string)));
      const keyIds = [...info.output.matchAll(/localKeyID: ([0-9A-F ]+)/g)].map((m) => m[1]);
      expect(keyIds).toHaveLength(2);
      expect(keyIds[0]).toBe(keyIds[1]);

      const wrong = await openssl(['pkcs12', '-in', bundle, '-info', '-noout', '-passin', 'pass:wrong']);
      expect(wrong.code).not.toBe(0);
    },
    20_000,
  );

  it('Node loads the bundle with its password and presents the leaf and chain in a mutual-TLS handshake', async () => {
    const cert = credentialOf(await issue(provider, { scope: { generate: true, keyType: 'ec-p256', pkcs12: true } }));
    const seen = await handshakeWithBundle(provider, cert);
    expect(seen.slice(0, 1 + cert.chain.length)).toEqual([cert.certificate, ...cert.chain].map((pem) => new X509Certificate(pem).raw));
    expect(() => tls.createSecureContext({ pfx: Buffer.from(cert.pkcs12 as string, 'base64'), passphrase: 'wrong' })).toThrow();
  });
});
