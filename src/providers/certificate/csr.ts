import { constants, createPublicKey, verify, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { InvalidCsr } from '../../errors.js';
import {
  OID,
  Type,
  children,
  fromDer,
  isContext,
  isUniversal,
  oidOf,
  pemBlocks,
  primitiveValue,
  toBuffer,
  toDer,
  type Asn1,
} from './der.js';
import type { LeafKeyType } from './settings.js';
import { keyIdentifierOf } from './x509-builder.js';

/**
 * A PKCS#10 certificate request, read with forge's ASN.1 layer. Only its public
 * key matters to latchkey: the subject, requested extensions and any other
 * attribute are ignored, because identity comes from the policy, never from
 * the request.
 */
export interface ParsedCsr {
  readonly keyType: LeafKeyType;
  readonly publicKey: KeyObject;
  /** DER of the request's SubjectPublicKeyInfo (binary string), carried into the certificate as it is. */
  readonly subjectPublicKeyInfoDer: string;
  /** SHA-1 of the key (RFC 5280 method 1), for the certificate's subject key identifier. */
  readonly subjectKeyIdentifier: string;
  /** The exact DER bytes the request's signature covers (binary string). */
  readonly signedBytes: string;
  readonly signature: string;
  readonly signatureCheck: SignatureCheck;
}

interface SignatureCheck {
  readonly hash: 'sha256' | 'sha384' | 'sha512';
  /** RSASSA-PSS salt length; absent for PKCS#1 v1.5 and ECDSA. */
  readonly pssSaltLength?: number;
}

const CURVE_NAMES: Readonly<Record<string, string>> = {
  [OID.prime256v1]: 'P-256',
  '1.3.132.0.34': 'P-384',
  '1.3.132.0.35': 'P-521',
  '1.3.132.0.10': 'secp256k1',
};

const RSA_SIGNATURES: Readonly<Record<string, SignatureCheck['hash']>> = {
  [OID.sha256WithRSAEncryption]: 'sha256',
  [OID.sha384WithRSAEncryption]: 'sha384',
  [OID.sha512WithRSAEncryption]: 'sha512',
};
const ECDSA_SIGNATURES: Readonly<Record<string, SignatureCheck['hash']>> = {
  [OID.ecdsaWithSha256]: 'sha256',
  [OID.ecdsaWithSha384]: 'sha384',
};
const HASHES: Readonly<Record<string, SignatureCheck['hash']>> = {
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512',
};

const ACCEPTED = 'RSA 2048 or 3072 bits, or ECDSA P-256';

function refuse(problem: string): never {
  throw new InvalidCsr(`invalid CSR: ${problem}`, { problem });
}

/**
 * Reads a PEM CSR and its public key without checking its signature (that is
 * `verifyCsrSignature`). Throws InvalidCsr naming the problem: not PEM, not a
 * CSR, a key type latchkey does not accept, an unknown signature algorithm.
 */
export function parseCsr(pem: string): ParsedCsr {
  let blocks: string[];
  try {
    blocks = pemBlocks(pem, 'CERTIFICATE REQUEST');
    if (blocks.length === 0) blocks = pemBlocks(pem, 'NEW CERTIFICATE REQUEST');
  } catch {
    refuse('expected a PEM block "-----BEGIN CERTIFICATE REQUEST-----"');
  }
  if (blocks.length !== 1) {
    refuse(blocks.length === 0 ? 'expected a PEM block "-----BEGIN CERTIFICATE REQUEST-----"' : 'expected exactly one certificate request');
  }
  const der = blocks[0] as string;

  let request: Asn1;
  try {
    request = fromDer(der);
  } catch {
    refuse('the PEM body is not DER-encoded ASN.1');
  }
  const [info, signatureAlgorithm, signatureBits, ...extra] = children(request);
  if (
    !isUniversal(request, Type.SEQUENCE) ||
    !isUniversal(info, Type.SEQUENCE) ||
    !isUniversal(signatureAlgorithm, Type.SEQUENCE) ||
    !isUniversal(signatureBits, Type.BITSTRING) ||
    extra.length > 0
  ) {
    refuse('not a PKCS#10 CertificationRequest');
  }
  const [version, subject, subjectPublicKeyInfo, attributes] = children(info);
  if (
    !isUniversal(version, Type.INTEGER) ||
    primitiveValue(version) !== '\0' ||
    !isUniversal(subject, Type.SEQUENCE) ||
    !isUniversal(subjectPublicKeyInfo, Type.SEQUENCE) ||
    !isContext(attributes, 0)
  ) {
    refuse('not a version 1 CertificationRequestInfo');
  }

  // The signature covers the original bytes; re-encoding them must give the same bytes (DER, not BER).
  const signedBytes = toDer(info);
  if (der.substr(outerHeaderLength(der), signedBytes.length) !== signedBytes) {
    refuse('not DER-encoded (indefinite or non-minimal lengths)');
  }

  const { keyType, ...key } = readPublicKey(subjectPublicKeyInfo);
  const signatureCheck = readSignatureAlgorithm(signatureAlgorithm, keyType);
  const bits = primitiveValue(signatureBits);
  if (bits.length < 2 || bits.charCodeAt(0) !== 0) refuse('malformed signature BIT STRING');
  return {
    keyType,
    publicKey: key.publicKey,
    subjectPublicKeyInfoDer: key.subjectPublicKeyInfoDer,
    subjectKeyIdentifier: key.subjectKeyIdentifier,
    signedBytes,
    signature: bits.slice(1),
    signatureCheck,
  };
}

/** Proof of possession: the request is signed by the private key of the public key it carries. */
export function verifyCsrSignature(csr: ParsedCsr): void {
  const { hash, pssSaltLength } = csr.signatureCheck;
  const key =
    pssSaltLength === undefined
      ? csr.publicKey
      : { key: csr.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: pssSaltLength };
  let valid = false;
  try {
    valid = verify(hash, toBuffer(csr.signedBytes), key, toBuffer(csr.signature));
  } catch {
    valid = false;
  }
  if (!valid) refuse('its signature does not verify with its own public key (altered, or not signed by that key)');
}

// Importing a key costs more than verifying with it (OpenSSL 3's decoders), and
// workloads renew with the same key: keep recent keys. The algorithm's
// parameters were checked to be the one accepted form (NULL, or the P-256 OID),
// so algorithm + key bits identify the SubjectPublicKeyInfo exactly.
const KEY_CACHE_SIZE = 4096;

interface ImportedKey {
  readonly publicKey: KeyObject;
  readonly subjectPublicKeyInfoDer: string;
  readonly subjectKeyIdentifier: string;
}
const recentKeys = new Map<string, ImportedKey>();

function importPublicKey(spki: Asn1, keyAlgorithm: string): ImportedKey {
  const keyBits = primitiveValue(children(spki)[1]);
  const cacheKey = `${keyAlgorithm} ${keyBits}`;
  const cached = recentKeys.get(cacheKey);
  if (cached) {
    recentKeys.delete(cacheKey); // re-insert: Map order is the LRU order
    recentKeys.set(cacheKey, cached);
    return cached;
  }
  const der = toDer(spki);
  // An uncompressed P-256 point (0x04 || X || Y) imports about twice as fast as JWK than through the DER decoder.
  const publicKey =
    keyAlgorithm === OID.ecPublicKey && keyBits.length === 66 && keyBits.charCodeAt(1) === 0x04
      ? createPublicKey({
          key: { kty: 'EC', crv: 'P-256', x: toBuffer(keyBits.slice(2, 34)).toString('base64url'), y: toBuffer(keyBits.slice(34)).toString('base64url') },
          format: 'jwk',
        })
      : createPublicKey({ key: toBuffer(der), format: 'der', type: 'spki' });
  if (recentKeys.size >= KEY_CACHE_SIZE) recentKeys.delete(recentKeys.keys().next().value as string);
  const imported = { publicKey, subjectPublicKeyInfoDer: der, subjectKeyIdentifier: keyIdentifierOf(spki) };
  recentKeys.set(cacheKey, imported);
  return imported;
}

// Tag byte, then a short or long-form length: 2 bytes, or 2 + the count of length bytes.
function outerHeaderLength(der: string): number {
  const first = der.charCodeAt(1);
  return first < 0x80 ? 2 : 2 + (first & 0x7f);
}

function readPublicKey(spki: Asn1): { keyType: LeafKeyType } & ImportedKey {
  const [algorithm] = children(spki);
  const [algorithmOid, parameters] = children(algorithm);
  const keyAlgorithm = oidOf(algorithmOid);
  if (keyAlgorithm === OID.rsaEncryption) {
    if (!isUniversal(parameters, Type.NULL)) refuse('RSA key algorithm parameters must be NULL');
  } else if (keyAlgorithm === OID.ecPublicKey) {
    const curve = oidOf(parameters);
    if (curve !== OID.prime256v1) {
      const name = curve === undefined ? 'explicit curve parameters' : (CURVE_NAMES[curve] ?? `curve ${curve}`);
      refuse(`an ECDSA key on ${name} is not accepted (expected ${ACCEPTED})`);
    }
  } else {
    refuse(`key algorithm ${keyAlgorithm ?? '(unreadable)'} is not accepted (expected ${ACCEPTED})`);
  }

  let imported: ImportedKey;
  try {
    imported = importPublicKey(spki, keyAlgorithm);
  } catch {
    refuse('its public key cannot be read');
  }
  if (keyAlgorithm === OID.ecPublicKey) return { keyType: 'ec-p256', ...imported };
  const { publicKey } = imported;

  const { modulusLength, publicExponent } = publicKey.asymmetricKeyDetails ?? {};
  if (modulusLength !== 2048 && modulusLength !== 3072) {
    refuse(`an RSA key of ${modulusLength ?? 'unknown'} bits is not accepted (expected ${ACCEPTED})`);
  }
  if (publicExponent === undefined || publicExponent < 65537n || publicExponent % 2n === 0n) {
    refuse('RSA public exponent must be odd and at least 65537');
  }
  return { keyType: modulusLength === 2048 ? 'rsa-2048' : 'rsa-3072', ...imported };
}

function readSignatureAlgorithm(algorithm: Asn1, keyType: LeafKeyType): SignatureCheck {
  const [algorithmOid, parameters] = children(algorithm);
  const name = oidOf(algorithmOid) ?? '(unreadable)';
  if (keyType === 'ec-p256') {
    const hash = ECDSA_SIGNATURES[name];
    if (!hash || parameters !== undefined) refuse(`signature algorithm ${name} is not accepted for an ECDSA key (expected ecdsa-with-SHA256 or SHA384)`);
    return { hash };
  }
  const hash = RSA_SIGNATURES[name];
  if (hash) {
    if (parameters !== undefined && !isUniversal(parameters, Type.NULL)) refuse('RSA signature algorithm parameters must be NULL');
    return { hash };
  }
  if (name === OID.rsassaPss) return readPssParameters(parameters);
  refuse(`signature algorithm ${name} is not accepted for an RSA key (expected SHA-256/384/512 with RSA, PKCS#1 v1.5 or PSS)`);
}

// RSASSA-PSS-params (RFC 4055): hash, MGF1 with the same hash (Node ties them), salt length, trailer 1.
function readPssParameters(parameters: Asn1 | undefined): SignatureCheck {
  if (!isUniversal(parameters, Type.SEQUENCE)) refuse('RSASSA-PSS needs explicit parameters (SHA-1 defaults are not accepted)');
  let hash: SignatureCheck['hash'] | undefined;
  let maskHash: SignatureCheck['hash'] | undefined;
  let saltLength = 20;
  for (const field of children(parameters)) {
    const [inner] = children(field);
    if (isContext(field, 0)) hash = HASHES[oidOf(children(inner)[0]) ?? ''];
    else if (isContext(field, 1)) {
      const [maskOid, maskParameters] = children(inner);
      if (oidOf(maskOid) === OID.mgf1) maskHash = HASHES[oidOf(children(maskParameters)[0]) ?? ''];
    } else if (isContext(field, 2) && isUniversal(inner, Type.INTEGER)) {
      saltLength = forge.asn1.derToInteger(primitiveValue(inner));
    } else if (isContext(field, 3) && isUniversal(inner, Type.INTEGER)) {
      if (forge.asn1.derToInteger(primitiveValue(inner)) !== 1) refuse('RSASSA-PSS trailer field must be 1');
    }
  }
  if (!hash || hash !== maskHash) refuse('RSASSA-PSS must use SHA-256/384/512 with MGF1 over the same hash');
  return { hash, pssSaltLength: saltLength };
}
