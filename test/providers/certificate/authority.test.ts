import { X509Certificate } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/clock.js';
import { ConfigError } from '../../../src/errors.js';
import { certificateKind } from '../../../src/providers/certificate/index.js';
import { credentialOf, deps, hasOpenssl, issue, makeCsr, makeKey, openDevTarget, openssl, scratchDir, target } from './support.js';

let dir: Awaited<ReturnType<typeof scratchDir>>;
beforeAll(async () => {
  dir = await scratchDir();
});
afterAll(() => dir.remove());

async function openError(settings: Record<string, unknown>, devMode = false, dataDir = dir.path): Promise<ConfigError> {
  try {
    await certificateKind.open('mesh', target({ trust_domain: 'latchkey.test', ...settings }), deps(dataDir, devMode));
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected the target to refuse to open');
}

/** A CA made by openssl, as an operator would bring it. */
async function opensslCa(name: string, options: { key?: string; issuer?: { cert: string; key: string }; days?: number } = {}) {
  const keyFile = await dir.file(`${name}.key`, options.key ?? makeKey('ec-p256'));
  const certFile = join(dir.path, `${name}.crt`);
  const ext = await dir.file(`${name}.ext`, 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n');
  const days = String(options.days ?? 30);
  const made = options.issuer
    ? await (async () => {
        const csr = await dir.file(`${name}.csr`, await makeCsr(dir, await readFile(keyFile, 'utf8'), { subject: `/CN=${name}` }));
        return openssl(['x509', '-req', '-in', csr, '-CA', options.issuer!.cert, '-CAkey', options.issuer!.key, '-set_serial', '7', '-days', days, '-extfile', ext, '-out', certFile]);
      })()
    : await openssl(['req', '-x509', '-new', '-key', keyFile, '-subj', `/CN=${name}`, '-days', days, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', certFile]);
  if (made.code !== 0) throw new Error(made.output);
  return { cert: certFile, key: keyFile };
}

describe('development CA', () => {
  it('is generated once into <dataDir>/ca/<target>/ with a 0600 key, and reused when the target reopens', async () => {
    const dataDir = join(dir.path, 'dev');
    const first = await openDevTarget(dataDir);
    const keyMode = (await stat(join(dataDir, 'ca', 'mesh', 'ca.key'))).mode & 0o777;
    expect(keyMode).toBe(0o600);
    const second = await openDevTarget(dataDir);
    expect(second.publicInfo?.()).toEqual(first.publicInfo?.());

    const bundle = (first.publicInfo?.() as { trustBundle: string }).trustBundle;
    const ca = new X509Certificate(bundle);
    expect(ca.ca).toBe(true);
    expect(ca.subject).toContain('latchkey development CA mesh');
    expect(ca.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    // A certificate issued after the restart chains to the CA from before it.
    const leaf = credentialOf(await issue(second, { scope: { generate: true } }));
    expect(new X509Certificate(leaf.certificate).verify(ca.publicKey)).toBe(true);
  });

  it('uses the configured key type', async () => {
    const provider = await openDevTarget(join(dir.path, 'dev-rsa'), 'rsa-2048');
    const ca = new X509Certificate((provider.publicInfo?.() as { trustBundle: string }).trustBundle);
    expect(ca.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
  });

  it('refuses to replace a CA whose key went missing', async () => {
    const dataDir = join(dir.path, 'dev-half');
    await openDevTarget(dataDir);
    await rm(join(dataDir, 'ca', 'mesh', 'ca.key'));
    const err = await openError({}, true, dataDir);
    expect(err.message).toContain(join(dataDir, 'ca', 'mesh', 'ca.key'));
  });
});

describe('CA from files', () => {
  it('outside dev mode, a target without CA files refuses to open', async () => {
    const err = await openError({});
    expect(err.message).toMatch(/certificate target "mesh": ca_cert_file and ca_key_file are required outside dev mode/);
  });

  it('names a missing certificate file', async () => {
    const err = await openError({ ca_cert_file: '/nonexistent/ca.crt', ca_key_file: '/nonexistent/ca.key' });
    expect(err.message).toMatch(/cannot read CA certificate file \/nonexistent\/ca\.crt/);
  });

  it.skipIf(!hasOpenssl)('names a key file that does not match the certificate', async () => {
    const ca = await opensslCa('mismatch');
    const otherKey = await dir.file('other.key', makeKey('ec-p256'));
    const err = await openError({ ca_cert_file: ca.cert, ca_key_file: otherKey });
    expect(err.message).toContain(`${otherKey}: the key does not match the CA certificate in ${ca.cert}`);
  });

  it('names a key file that is not a key', async () => {
    const garbage = await dir.file('garbage.key', 'not a key\n');
    const provider = await openDevTarget(join(dir.path, 'for-cert'));
    const certFile = await dir.file('some-ca.crt', (provider.publicInfo?.() as { trustBundle: string }).trustBundle);
    const err = await openError({ ca_cert_file: certFile, ca_key_file: garbage });
    expect(err.message).toContain(`${garbage}: not a PEM private key`);
  });

  it.skipIf(!hasOpenssl)('refuses a certificate that is not a CA', async () => {
    const key = makeKey('ec-p256');
    const keyFile = await dir.file('leaf-as-ca.key', key);
    const certFile = join(dir.path, 'leaf-as-ca.crt');
    await openssl(['req', '-x509', '-new', '-key', keyFile, '-subj', '/CN=leaf', '-days', '1', '-addext', 'basicConstraints=critical,CA:FALSE', '-out', certFile]);
    const err = await openError({ ca_cert_file: certFile, ca_key_file: keyFile });
    expect(err.message).toContain(`${certFile}: the certificate is not a CA`);
  });

  it('the target schema wants both files or neither', () => {
    const parsed = certificateKind.targetSchema.safeParse({ trust_domain: 'latchkey.test', ca_cert_file: 'ca.crt' });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.path).toEqual(['ca_key_file']);
  });

  it.skipIf(!hasOpenssl)('an operator CA with an RSA key issues certificates openssl verifies', async () => {
    const ca = await opensslCa('operator-rsa', { key: makeKey('rsa-3072') });
    const provider = await certificateKind.open('mesh', target({ trust_domain: 'latchkey.test', ca_cert_file: ca.cert, ca_key_file: ca.key }), deps(dir.path, false));
    const leaf = credentialOf(await issue(provider, { scope: { csr: await makeCsr(dir, makeKey('ec-p256')) } }));
    expect(leaf.chain).toEqual([]);
    const verified = await openssl(['verify', '-CAfile', ca.cert, await dir.file('operator-leaf.pem', leaf.certificate)]);
    expect(verified.code).toBe(0);
  });

  it.skipIf(!hasOpenssl)('an intermediate CA serves the root as the trust bundle and itself as the chain', async () => {
    const root = await opensslCa('root');
    const intermediate = await opensslCa('intermediate', { issuer: root });
    const provider = await certificateKind.open(
      'mesh',
      target({ trust_domain: 'latchkey.test', ca_cert_file: intermediate.cert, ca_key_file: intermediate.key, chain_files: [root.cert] }),
      deps(dir.path, false),
    );
    const leaf = credentialOf(await issue(provider, { scope: { csr: await makeCsr(dir, makeKey('rsa-2048')) } }));
    expect(leaf.trustBundle).toBe(new X509Certificate(await readFile(root.cert)).toString());
    expect(leaf.chain).toEqual([new X509Certificate(await readFile(intermediate.cert)).toString()]);
    const bundle = await dir.file('int-bundle.pem', leaf.trustBundle);
    const chain = await dir.file('int-chain.pem', leaf.chain.join(''));
    const leafFile = await dir.file('int-leaf.pem', leaf.certificate);
    expect((await openssl(['verify', '-CAfile', bundle, '-untrusted', chain, leafFile])).code).toBe(0);
    // Without the intermediate, the leaf does not chain: the chain is really needed.
    expect((await openssl(['verify', '-CAfile', bundle, leafFile])).code).not.toBe(0);
  });

  it.skipIf(!hasOpenssl)('chain_files that do not issue the CA are refused', async () => {
    const root = await opensslCa('root2');
    const unrelated = await opensslCa('unrelated');
    const intermediate = await opensslCa('intermediate2', { issuer: root });
    const err = await openError({ ca_cert_file: intermediate.cert, ca_key_file: intermediate.key, chain_files: [unrelated.cert] });
    expect(err.message).toContain(unrelated.cert);
  });

  it.skipIf(!hasOpenssl)('an expired CA leaves the target unavailable (503), not misconfigured, so the broker still starts', async () => {
    const ca = await opensslCa('expired', { days: 1 });
    const later = new Date(new X509Certificate(await readFile(ca.cert)).validTo).getTime() + 60_000;
    const opened = certificateKind.open('mesh', target({ trust_domain: 'latchkey.test', ca_cert_file: ca.cert, ca_key_file: ca.key }), deps(dir.path, false, new ManualClock(new Date(later))));
    await expect(opened).rejects.toMatchObject({ code: 'provider_unavailable', status: 503, message: expect.stringContaining('the CA certificate expired at') });
  });

  it.skipIf(!hasOpenssl)('a leaf never outlives its CA', async () => {
    const ca = await opensslCa('short-lived', { days: 1 });
    const caNotAfter = new Date(new X509Certificate(await readFile(ca.cert)).validTo);
    const provider = await certificateKind.open('mesh', target({ trust_domain: 'latchkey.test', ca_cert_file: ca.cert, ca_key_file: ca.key }), deps(dir.path, false, new ManualClock(new Date())));
    const issuedAt = new Date(caNotAfter.getTime() - 5 * 60_000);
    const leaf = credentialOf(await issue(provider, { scope: { generate: true }, issuedAt, ttlSeconds: 900 }));
    expect(new Date(leaf.notAfter).getTime()).toBe(caNotAfter.getTime());
  });
});
