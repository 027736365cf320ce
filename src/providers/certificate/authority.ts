import { X509Certificate, createPrivateKey, generateKeyPair, sign, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import forge from 'node-forge';
import type { Clock } from '../../clock.js';
import { ConfigError, ProviderUnavailable } from '../../errors.js';
import type { ProviderDeps } from '../provider.js';
import { OID, Type, children, fromDer, isContext, isUniversal, nullValue, oid, oidOf, pemBlocks, primitiveValue, sequence, toDer, toPem, type Asn1 } from './der.js';
import type { CertificateTarget, LeafKeyType } from './settings.js';
import { buildCertificate, distinguishedNameDer, keyIdentifierOf, randomSerial, rootCaExtensions, type CertificateSigner } from './x509-builder.js';

/** The issuing CA of one target, loaded once at open: its key is a KeyObject, never re-imported per request. */
export interface CertificateAuthority {
  /** The CA's subject Name (DER): every leaf's issuer. */
  readonly subject: string;
  /** The CA's subject key identifier: every leaf's authority key identifier. */
  readonly keyIdentifier: string;
  readonly notAfter: Date;
  readonly signer: CertificateSigner;
  /** Certificates a leaf's holder presents after the leaf (intermediates; empty for a root CA). */
  readonly chain: readonly string[];
  /** The trust anchor peers configure (PEM). */
  readonly trustBundle: string;
}

const generateKeyPairAsync = promisify(generateKeyPair);
const signAsync = promisify(sign);

/** How long a generated development CA lives; it is kept in the data folder across restarts. */
const DEVELOPMENT_CA_LIFETIME_MS = 10 * 365 * 24 * 3600 * 1000;

/**
 * Opens the CA of a target: from `ca_cert_file` + `ca_key_file`, or in dev
 * mode from `<dataDir>/ca/<target>/`, generating it there on first start.
 * Throws ConfigError naming the file that is missing, unreadable or mismatched.
 */
export async function openAuthority(targetName: string, target: CertificateTarget, deps: ProviderDeps): Promise<CertificateAuthority> {
  let files: { certFile: string; keyFile: string };
  if (target.ca_cert_file !== undefined && target.ca_key_file !== undefined) {
    files = { certFile: target.ca_cert_file, keyFile: target.ca_key_file };
  } else if (deps.devMode) {
    files = await ensureDevelopmentAuthority(targetName, target.ca_key_type, deps);
  } else {
    throw new ConfigError(`certificate target "${targetName}": ca_cert_file and ca_key_file are required outside dev mode`, { target: targetName });
  }
  return loadAuthority(targetName, files.certFile, files.keyFile, target.chain_files, deps.clock);
}

async function readSetting(targetName: string, file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`certificate target "${targetName}": cannot read ${what} file ${file}: ${(err as Error).message}`, { target: targetName, file });
  }
}

function readCertificates(targetName: string, file: string, text: string): X509Certificate[] {
  const problem = (message: string): ConfigError =>
    new ConfigError(`certificate target "${targetName}": ${file}: ${message}`, { target: targetName, file });
  let blocks: string[];
  try {
    blocks = pemBlocks(text, 'CERTIFICATE');
  } catch {
    throw problem('not a PEM file');
  }
  if (blocks.length === 0) throw problem('no "-----BEGIN CERTIFICATE-----" block');
  return blocks.map((der) => {
    try {
      return new X509Certificate(Buffer.from(der, 'latin1'));
    } catch {
      throw problem('a certificate in it cannot be parsed');
    }
  });
}

async function loadAuthority(targetName: string, certFile: string, keyFile: string, chainFiles: readonly string[], clock: Clock): Promise<CertificateAuthority> {
  const problem = (file: string, message: string): ConfigError =>
    new ConfigError(`certificate target "${targetName}": ${file}: ${message}`, { target: targetName, file });

  const certificates = readCertificates(targetName, certFile, await readSetting(targetName, certFile, 'CA certificate'));
  if (certificates.length !== 1) throw problem(certFile, 'expected exactly one certificate (put the rest of the chain in chain_files)');
  const certificate = certificates[0] as X509Certificate;
  if (!certificate.ca) throw problem(certFile, 'the certificate is not a CA (basicConstraints CA:TRUE is missing)');

  const keyText = await readSetting(targetName, keyFile, 'CA key');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(keyText);
  } catch {
    throw problem(keyFile, /ENCRYPTED/.test(keyText) ? 'encrypted keys are not supported; mount the key unencrypted as a secret file' : 'not a PEM private key');
  }
  if (!certificate.checkPrivateKey(privateKey)) throw problem(keyFile, `the key does not match the CA certificate in ${certFile}`);
  const signer = signerFor(privateKey, (message) => problem(keyFile, message));

  const fields = readCertificateFields(certificate);
  if (fields.notAfter.getTime() <= clock.now().getTime()) {
    // Time, not the file, made this CA unusable: the broker keeps the target as failed (503) and starts,
    // so other targets and expiry go on; a configuration mistake would stop start-up.
    throw new ProviderUnavailable(`certificate target "${targetName}": ${certFile}: the CA certificate expired at ${fields.notAfter.toISOString()}; renew it and restart`, {
      target: targetName,
      file: certFile,
    });
  }

  const above: X509Certificate[] = [];
  for (const file of chainFiles) {
    above.push(...readCertificates(targetName, file, await readSetting(targetName, file, 'chain')));
  }
  const path = [certificate, ...above];
  for (let i = 0; i + 1 < path.length; i += 1) {
    const child = path[i] as X509Certificate;
    const parent = path[i + 1] as X509Certificate;
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      throw problem(chainFiles.join(', '), `chain_files must list the issuers of the CA in order; "${child.subject.replace(/\n/g, ', ')}" is not issued by the next certificate`);
    }
  }
  const anchor = path[path.length - 1] as X509Certificate;
  return {
    subject: toDer(fields.subject),
    keyIdentifier: fields.keyIdentifier,
    notAfter: fields.notAfter,
    signer,
    chain: path.slice(0, -1).map((c) => c.toString()),
    trustBundle: anchor.toString(),
  };
}

// The CA's own subject, validity end and key identifier, read from its TBSCertificate.
function readCertificateFields(certificate: X509Certificate): { subject: Asn1; notAfter: Date; keyIdentifier: string } {
  const tbs = children(children(fromDer(certificate.raw.toString('latin1')))[0]);
  const at = isContext(tbs[0], 0) ? 1 : 0; // the version is optional
  const validity = children(tbs[at + 3]);
  const subject = tbs[at + 4] as Asn1;
  const subjectPublicKeyInfo = tbs[at + 5] as Asn1;
  const notAfterNode = validity[1] as Asn1;
  const notAfter =
    notAfterNode.type === Type.UTCTIME
      ? forge.asn1.utcTimeToDate(primitiveValue(notAfterNode))
      : forge.asn1.generalizedTimeToDate(primitiveValue(notAfterNode));

  let keyIdentifier = keyIdentifierOf(subjectPublicKeyInfo);
  const extensions = children(children(tbs.find((node) => isContext(node, 3)))[0]);
  for (const extension of extensions) {
    const parts = children(extension);
    if (oidOf(parts[0]) !== OID.subjectKeyIdentifier) continue;
    const value = fromDer(primitiveValue(parts[parts.length - 1]));
    if (isUniversal(value, Type.OCTETSTRING)) keyIdentifier = primitiveValue(value);
  }
  return { subject, notAfter, keyIdentifier };
}

/**
 * A signer for a CA key: ECDSA P-256/P-384 with SHA-256/384, or RSA (>= 2048
 * bits) with SHA-256 PKCS#1 v1.5. An ECDSA signature costs tens of
 * microseconds, so it runs inline; an RSA one costs a millisecond or more, so
 * it goes to libuv's thread pool and the event loop keeps serving.
 */
function signerFor(privateKey: KeyObject, problem: (message: string) => Error): CertificateSigner {
  const details = privateKey.asymmetricKeyDetails ?? {};
  if (privateKey.asymmetricKeyType === 'ec') {
    const hash = details.namedCurve === 'prime256v1' ? 'sha256' : details.namedCurve === 'secp384r1' ? 'sha384' : undefined;
    if (!hash) throw problem(`a CA key on curve ${details.namedCurve ?? 'unknown'} is not supported (expected P-256, P-384 or RSA)`);
    const algorithm = toDer(sequence([oid(hash === 'sha256' ? OID.ecdsaWithSha256 : OID.ecdsaWithSha384)]));
    return { algorithm, sign: (tbs) => sign(hash, tbs, privateKey) };
  }
  if (privateKey.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) >= 2048) {
    const algorithm = toDer(sequence([oid(OID.sha256WithRSAEncryption), nullValue()]));
    return { algorithm, sign: (tbs) => signAsync('sha256', tbs, privateKey) };
  }
  throw problem(`a CA key of type ${privateKey.asymmetricKeyType ?? 'unknown'} is not supported (expected ECDSA P-256/P-384 or RSA of at least 2048 bits)`);
}

/** Creates a key pair of a leaf key type with Node's crypto. */
export async function generateKey(keyType: LeafKeyType): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
  return keyType === 'ec-p256'
    ? generateKeyPairAsync('ec', { namedCurve: 'P-256' })
    : generateKeyPairAsync('rsa', { modulusLength: keyType === 'rsa-2048' ? 2048 : 3072 });
}

/** `<dataDir>/ca/<target>/ca.crt` + `ca.key` (0600): generated on the first dev start, reused after. */
async function ensureDevelopmentAuthority(
  targetName: string,
  keyType: LeafKeyType,
  deps: ProviderDeps,
): Promise<{ certFile: string; keyFile: string }> {
  const dir = join(deps.dataDir, 'ca', targetName);
  const certFile = join(dir, 'ca.crt');
  const keyFile = join(dir, 'ca.key');
  const haveCert = existsSync(certFile);
  const haveKey = existsSync(keyFile);
  if (haveCert && haveKey) return { certFile, keyFile };
  if (haveCert !== haveKey) {
    throw new ConfigError(
      `certificate target "${targetName}": ${haveCert ? keyFile : certFile} is missing next to ${haveCert ? certFile : keyFile}; remove ${dir} to generate a new development CA`,
      { target: targetName, file: haveCert ? keyFile : certFile },
    );
  }

  const now = deps.clock.now();
  const { privateKey, publicKey } = await generateKey(keyType);
  const subjectPublicKeyInfo = publicKey.export({ type: 'spki', format: 'der' }).toString('latin1');
  const keyIdentifier = keyIdentifierOf(fromDer(subjectPublicKeyInfo));
  const subject = distinguishedNameDer([
    [OID.organizationName, 'latchkey development'],
    [OID.commonName, `latchkey development CA ${targetName}`],
  ]);
  const der = await buildCertificate(
    {
      serial: randomSerial(),
      issuer: subject,
      subject,
      subjectPublicKeyInfo,
      notBefore: new Date(now.getTime() - 3600_000),
      notAfter: new Date(now.getTime() + DEVELOPMENT_CA_LIFETIME_MS),
      extensions: rootCaExtensions(keyIdentifier),
    },
    signerFor(privateKey, (message) => new ConfigError(message)),
  );

  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Write both under temporary names, then rename: a crash never leaves a half-written key behind.
  const suffix = `.tmp-${process.pid}`;
  await writeFile(keyFile + suffix, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await writeFile(certFile + suffix, toPem('CERTIFICATE', der), { mode: 0o644 });
  await rename(keyFile + suffix, keyFile);
  await rename(certFile + suffix, certFile);
  deps.logger.info({ target: targetName, certFile, keyType }, 'generated a development CA (dev mode only)');
  return { certFile, keyFile };
}
