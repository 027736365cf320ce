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
  set,
  smallInteger,
  time,
  toBuffer,
  toDer,
  utf8String,
  type Asn1,
} from './der.js';
import type { CertificateUsage } from './settings.js';

/**
 * Builds X.509 v3 certificates (RFC 5280) with forge's ASN.1 layer; the
 * signature itself comes from Node's crypto through a `CertificateSigner`.
 */

/** Signs TBSCertificate bytes with the CA key, and says with which algorithm. */
export interface CertificateSigner {
  /** The AlgorithmIdentifier written into the certificate (twice, as RFC 5280 wants). */
  readonly algorithm: Asn1;
  sign(tbsCertificate: Buffer): Buffer | Promise<Buffer>;
}

export interface CertificateFields {
  /** Positive serial as big-endian bytes (binary string). */
  readonly serial: string;
  readonly issuer: Asn1;
  readonly subject: Asn1;
  readonly subjectPublicKeyInfo: Asn1;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly extensions: readonly Asn1[];
}

/** Assembles, signs and DER-encodes a certificate. */
export async function buildCertificate(fields: CertificateFields, signer: CertificateSigner): Promise<Buffer> {
  const tbs = sequence([
    contextExplicit(0, smallInteger(2)), // v3
    integerBytes(fields.serial),
    signer.algorithm,
    fields.issuer,
    sequence([time(fields.notBefore), time(fields.notAfter)]),
    fields.subject,
    fields.subjectPublicKeyInfo,
    contextExplicit(3, sequence([...fields.extensions])),
  ]);
  const tbsDer = toDer(tbs);
  const signature = await signer.sign(toBuffer(tbsDer));
  return toBuffer(toDer(sequence([tbs, signer.algorithm, bitString(signature.toString('latin1'))])));
}

/**
 * A random positive serial of 127 bits (RFC 5280 allows up to 20 octets; CA/B
 * wants at least 64 random bits). The top bits are fixed so the DER INTEGER is
 * always 16 bytes, positive and minimal.
 */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x40;
  return bytes.toString('latin1');
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

function extension(id: string, critical: boolean, value: Asn1): Asn1 {
  return sequence(critical ? [oid(id), boolean(true), octetString(toDer(value))] : [oid(id), octetString(toDer(value))]);
}

// KeyUsage named bits, DER-encoded as (unused-bit count, bits): digitalSignature = bit 0, keyEncipherment = 2, keyCertSign = 5, cRLSign = 6.
const KEY_USAGE_SIGNATURE = '\x07\x80';
const KEY_USAGE_SIGNATURE_ENCIPHERMENT = '\x05\xa0';
const KEY_USAGE_CA = '\x01\x86';
const keyUsage = (bits: string): Asn1 => extension(OID.keyUsage, true, bitStringContents(bits));

const EKU_OIDS: Readonly<Record<CertificateUsage, string>> = {
  client_auth: OID.clientAuth,
  server_auth: OID.serverAuth,
};

export interface LeafExtensionInput {
  /** RSA keys may also encipher (TLS 1.2 RSA key exchange); EC keys only sign. */
  readonly rsaKey: boolean;
  readonly usages: readonly CertificateUsage[];
  readonly spiffeId: string;
  readonly dnsNames: readonly string[];
  /** RFC 5280 4.2.1.6: with an empty subject the SAN extension must be critical. */
  readonly emptySubject: boolean;
  readonly subjectKeyIdentifier: string;
  readonly authorityKeyIdentifier: string;
}

/** The extensions of a leaf: everything from the rule, nothing from the request. */
export function leafExtensions(input: LeafExtensionInput): Asn1[] {
  const names = [contextPrimitive(6, input.spiffeId), ...input.dnsNames.map((name) => contextPrimitive(2, name))];
  return [
    extension(OID.basicConstraints, true, sequence([])), // cA defaults to FALSE, so DER leaves it out
    keyUsage(input.rsaKey ? KEY_USAGE_SIGNATURE_ENCIPHERMENT : KEY_USAGE_SIGNATURE),
    extension(OID.extKeyUsage, false, sequence(input.usages.map((usage) => oid(EKU_OIDS[usage])))),
    extension(OID.subjectAltName, input.emptySubject, sequence(names)),
    extension(OID.subjectKeyIdentifier, false, octetString(input.subjectKeyIdentifier)),
    extension(OID.authorityKeyIdentifier, false, sequence([contextPrimitive(0, input.authorityKeyIdentifier)])),
  ];
}

/** The extensions of a root CA that signs leaves only (pathLen 0). */
export function rootCaExtensions(subjectKeyIdentifier: string): Asn1[] {
  return [
    extension(OID.basicConstraints, true, sequence([boolean(true), smallInteger(0)])),
    keyUsage(KEY_USAGE_CA),
    extension(OID.subjectKeyIdentifier, false, octetString(subjectKeyIdentifier)),
  ];
}
