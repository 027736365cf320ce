import { createHash, createHmac, randomBytes, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { contextExplicit, fromDer, nullValue, octetString, oid, pemBlocks, sequence, set, smallInteger, toBinary, toBuffer, toDer, type Asn1 } from './der.js';

/**
 * What OpenSSL 3's `pkcs12 -export` uses by default: 2048 iterations for the
 * key's PBKDF2 (OpenSSL's own default, which Node's key export uses) and for
 * the MAC key. The password is random (144 bits), so the count guards nothing
 * a brute force could reach; it stays at the default every reader accepts.
 */
const ITERATIONS = 2048;
/** The MAC salt: 128 bits, as NIST SP 800-132 asks (OpenSSL 3.0 writes 64-bit ones; every reader takes either). */
const SALT_BYTES = 16;
const FRIENDLY_NAME = 'latchkey';

const P12_OID = {
  data: forge.pki.oids['data'] as string,
  certBag: forge.pki.oids['certBag'] as string,
  x509Certificate: forge.pki.oids['x509Certificate'] as string,
  pkcs8ShroudedKeyBag: forge.pki.oids['pkcs8ShroudedKeyBag'] as string,
  localKeyId: forge.pki.oids['localKeyId'] as string,
  friendlyName: forge.pki.oids['friendlyName'] as string,
  sha256: forge.pki.oids['sha256'] as string,
} as const;

/**
 * A password-protected PKCS#12 bundle (RFC 7292) of a broker-generated key and
 * its certificate chain (PEM, leaf first), for any key and CA algorithm.
 *
 * The key goes in as Node's encrypted PKCS#8 DER: PBES2 / PBKDF2-HMAC-SHA256
 * / AES-256-CBC, done by OpenSSL (about 0.8 ms, where forge's pure-JS
 * `encryptPrivateKeyInfo` took 18 ms of the event loop); the certificates go in as
 * their DER bytes, untouched, in a plain (not encrypted) SafeContents: they are
 * public and already returned in the clear next to the bundle. The whole file
 * carries an HMAC-SHA256 MAC, as OpenSSL 3 writes by default. forge's own
 * `toPkcs12Asn1` is not used: it takes only RSA keys and re-encodes
 * certificates from forge's RSA-only model, and its MAC is SHA-1.
 */
export function buildPkcs12(privateKey: KeyObject, certificatePems: readonly string[]): { pkcs12: string; password: string } {
  const certificates = certificatePems.flatMap((pem) => pemBlocks(pem, 'CERTIFICATE'));
  const leaf = certificates[0];
  if (leaf === undefined) throw new TypeError('buildPkcs12 needs at least the leaf certificate');
  const password = randomBytes(18).toString('base64url');

  // The leaf and the key share localKeyId (SHA-1 of the leaf, as OpenSSL sets it): that is how readers pair them.
  const pairing = set([
    attribute(P12_OID.localKeyId, octetString(toBinary(createHash('sha1').update(toBuffer(leaf)).digest()))),
    attribute(P12_OID.friendlyName, forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.BMPSTRING, false, FRIENDLY_NAME)),
  ]);
  const certificateBags = certificates.map((der, index) =>
    safeBag(P12_OID.certBag, sequence([oid(P12_OID.x509Certificate), contextExplicit(0, octetString(der))]), index === 0 ? pairing : undefined),
  );
  const shroudedKey = fromDer(toBinary(privateKey.export({ type: 'pkcs8', format: 'der', cipher: 'aes-256-cbc', passphrase: password })));
  const keyBag = safeBag(P12_OID.pkcs8ShroudedKeyBag, shroudedKey, pairing);

  const authenticatedSafe = toDer(sequence([dataContentInfo(toDer(sequence(certificateBags))), dataContentInfo(toDer(sequence([keyBag])))]));
  const pfx = sequence([smallInteger(3), dataContentInfo(authenticatedSafe), macData(authenticatedSafe, password)]);
  return { pkcs12: toBuffer(toDer(pfx)).toString('base64'), password };
}

/** SafeBag: bagId, [0] EXPLICIT bagValue, bagAttributes. */
function safeBag(bagId: string, value: Asn1, attributes: Asn1 | undefined): Asn1 {
  return sequence([oid(bagId), contextExplicit(0, value), ...(attributes ? [attributes] : [])]);
}

function attribute(type: string, value: Asn1): Asn1 {
  return sequence([oid(type), set([value])]);
}

/** A PKCS#7 ContentInfo of type data around already-encoded contents. */
function dataContentInfo(contents: string): Asn1 {
  return sequence([oid(P12_OID.data), contextExplicit(0, octetString(contents))]);
}

/**
 * MacData over the AuthenticatedSafe: the MAC key comes from the password by
 * the PKCS#12 KDF (RFC 7292 B.2, ID 3) with SHA-256, as OpenSSL 3 does.
 */
function macData(authenticatedSafe: string, password: string): Asn1 {
  const salt = toBinary(randomBytes(SALT_BYTES));
  const macKey = forge.pkcs12.generateKey(password, forge.util.createBuffer(salt), 3, ITERATIONS, 32, forge.md.sha256.create());
  const digest = createHmac('sha256', toBuffer(macKey.getBytes())).update(toBuffer(authenticatedSafe)).digest();
  return sequence([
    sequence([sequence([oid(P12_OID.sha256), nullValue()]), octetString(toBinary(digest))]),
    octetString(salt),
    smallInteger(ITERATIONS),
  ]);
}
