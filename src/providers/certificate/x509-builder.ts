import { createHash, randomBytes } from 'node:crypto';
import {
  OID,
  bitString,
  bitStringContents,
  boolean,
  children,
  contextExplicit,
  contextPrimitive,
  integerBytes,
  octetString,
  oid,
  primitiveValue,
  sequence,
  sequenceDer,
  set,
  wrapDer,
  smallInteger,
  time,
  toBuffer,
  toDer,
  utf8String,
  type Asn1,
} from './der.js';
import type { CertificateUsage, KeyUsage } from './settings.js';

/**
 * Builds X.509 v3 certificates (RFC 5280) with forge's ASN.1 layer; the
 * signature itself comes from Node's crypto through a `CertificateSigner`.
 */

/** Signs TBSCertificate bytes with the CA key, and says with which algorithm. */
export interface CertificateSigner {
  /** DER of the AlgorithmIdentifier written into the certificate (twice, as RFC 5280 wants). */
  readonly algorithm: string;
  sign(tbsCertificate: Buffer): Buffer | Promise<Buffer>;
}

/** The parts of a certificate; names and the key arrive DER-encoded (binary strings). */
export interface CertificateFields {
  /** Positive serial as big-endian bytes (binary string). */
  readonly serial: string;
  readonly issuer: string;
  readonly subject: string;
  readonly subjectPublicKeyInfo: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** DER of each Extension. */
  readonly extensions: readonly string[];
}

const VERSION_3 = toDer(contextExplicit(0, smallInteger(2)));

/** Assembles, signs and DER-encodes a certificate. */
export async function buildCertificate(fields: CertificateFields, signer: CertificateSigner): Promise<Buffer> {
  const tbs = sequenceDer([
    VERSION_3,
    toDer(integerBytes(fields.serial)),
    signer.algorithm,
    fields.issuer,
    toDer(sequence([time(fields.notBefore), time(fields.notAfter)])),
    fields.subject,
    fields.subjectPublicKeyInfo,
    wrapDer(0xa3, [sequenceDer(fields.extensions)]), // [3] EXPLICIT Extensions
  ]);
  const signature = await signer.sign(toBuffer(tbs));
  return toBuffer(sequenceDer([tbs, signer.algorithm, toDer(bitString(signature.toString('latin1')))]));
}

// Random bytes come from a pool: one randomBytes call per 256 serials instead of one per certificate.
const SERIAL_BYTES = 16;
let serialPool = Buffer.alloc(0);
let serialOffset = 0;

/**
 * A random positive serial of 126 random bits (RFC 5280 allows up to 20
 * octets; CA/B wants at least 64 random bits). The top bits are fixed to 01
 * so the DER INTEGER is always 16 bytes, positive and minimal.
 */
export function randomSerial(): string {
  if (serialOffset + SERIAL_BYTES > serialPool.length) {
    serialPool = randomBytes(SERIAL_BYTES * 256);
    serialOffset = 0;
  }
  const bytes = serialPool.toString('latin1', serialOffset, serialOffset + SERIAL_BYTES);
  serialOffset += SERIAL_BYTES;
  return String.fromCharCode((bytes.charCodeAt(0) & 0x3f) | 0x40) + bytes.slice(1);
}

/** A Name with one RDN per attribute, in order; `[]` gives the empty Name. */
export function distinguishedName(attributes: readonly (readonly [oid: string, value: string])[]): Asn1 {
  return sequence(attributes.map(([type, value]) => set([sequence([oid(type), utf8String(value)])])));
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's bytes. */
export function keyIdentifierOf(subjectPublicKeyInfo: Asn1): string {
  const keyBits = primitiveValue(children(subjectPublicKeyInfo)[1]).slice(1);
  return createHash('sha1').update(keyBits, 'latin1').digest('binary');
}

/** A Name's DER with one RDN per attribute (see `distinguishedName`). */
export const distinguishedNameDer = (attributes: readonly (readonly [oid: string, value: string])[]): string =>
  toDer(distinguishedName(attributes));

function extension(id: string, critical: boolean, value: Asn1): string {
  return toDer(sequence(critical ? [oid(id), boolean(true), octetString(toDer(value))] : [oid(id), octetString(toDer(value))]));
}

// KeyUsage named bits (RFC 5280 4.2.1.3): digitalSignature = bit 0, keyEncipherment = 2, keyAgreement = 4, keyCertSign = 5, cRLSign = 6.
const KEY_USAGE_BITS: Readonly<Record<KeyUsage, number>> = { digital_signature: 0, key_encipherment: 2, key_agreement: 4 };
const KEY_USAGE_CA = '\x01\x86';
const keyUsage = (bits: string): string => extension(OID.keyUsage, true, bitStringContents(bits));

/**
 * A leaf's KeyUsage bits as BIT STRING contents: the unused-bit count, then
 * the bits, with trailing zero bits dropped as DER requires for named bits
 * (all leaf bits fit in the first byte).
 */
function leafKeyUsageBits(usages: readonly KeyUsage[]): string {
  const bits = usages.map((u) => KEY_USAGE_BITS[u]);
  const byte = bits.reduce((acc, bit) => acc | (0x80 >> bit), 0);
  return String.fromCharCode(7 - Math.max(...bits), byte);
}

const EKU_OIDS: Readonly<Record<CertificateUsage, string>> = {
  client_auth: OID.clientAuth,
  server_auth: OID.serverAuth,
};

export interface LeafExtensionInput {
  /** KeyUsage bits, from the rule or the key type's default. */
  readonly keyUsages: readonly KeyUsage[];
  readonly usages: readonly CertificateUsage[];
  readonly spiffeId: string;
  readonly dnsNames: readonly string[];
  /** RFC 5280 4.2.1.6: with an empty subject the SAN extension must be critical. */
  readonly emptySubject: boolean;
  readonly subjectKeyIdentifier: string;
  readonly authorityKeyIdentifier: string;
}

// What depends only on the rule and the key kind (or the CA) is encoded once and reused.
const fixedLeafExtensions = new Map<string, readonly string[]>();
const authorityKeyIdentifiers = new Map<string, string>();

/** The extensions of a leaf (DER each): everything from the rule, nothing from the request. */
export function leafExtensions(input: LeafExtensionInput): string[] {
  const fixedKey = `${input.keyUsages.join(',')}|${input.usages.join(',')}`;
  let fixed = fixedLeafExtensions.get(fixedKey);
  if (!fixed) {
    fixed = [
      extension(OID.basicConstraints, true, sequence([])), // cA defaults to FALSE, so DER leaves it out
      keyUsage(leafKeyUsageBits(input.keyUsages)),
      extension(OID.extKeyUsage, false, sequence(input.usages.map((usage) => oid(EKU_OIDS[usage])))),
    ];
    fixedLeafExtensions.set(fixedKey, fixed);
  }
  let authority = authorityKeyIdentifiers.get(input.authorityKeyIdentifier);
  if (!authority) {
    authority = extension(OID.authorityKeyIdentifier, false, sequence([contextPrimitive(0, input.authorityKeyIdentifier)]));
    authorityKeyIdentifiers.set(input.authorityKeyIdentifier, authority);
  }
  const names = [contextPrimitive(6, input.spiffeId), ...input.dnsNames.map((name) => contextPrimitive(2, name))];
  return [
    ...fixed,
    extension(OID.subjectAltName, input.emptySubject, sequence(names)),
    extension(OID.subjectKeyIdentifier, false, octetString(input.subjectKeyIdentifier)),
    authority,
  ];
}

/** The extensions of a root CA that signs leaves only (pathLen 0). */
export function rootCaExtensions(subjectKeyIdentifier: string): string[] {
  return [
    extension(OID.basicConstraints, true, sequence([boolean(true), smallInteger(0)])),
    keyUsage(KEY_USAGE_CA),
    extension(OID.subjectKeyIdentifier, false, octetString(subjectKeyIdentifier)),
  ];
}
