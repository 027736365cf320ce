import forge from 'node-forge';

/**
 * Thin shorthands over node-forge's ASN.1 layer for the X.509 structures this
 * provider reads and writes. forge works on "binary strings" (one char per
 * byte); Node's crypto on Buffers: `toBuffer`/`toBinary` cross between them.
 */

const { asn1 } = forge;
export type Asn1 = forge.asn1.Asn1;

export const OID = {
  rsaEncryption: forge.pki.oids.rsaEncryption as string,
  rsassaPss: forge.pki.oids['RSASSA-PSS'] as string,
  mgf1: forge.pki.oids.mgf1 as string,
  sha256WithRSAEncryption: forge.pki.oids.sha256WithRSAEncryption as string,
  sha384WithRSAEncryption: forge.pki.oids.sha384WithRSAEncryption as string,
  sha512WithRSAEncryption: forge.pki.oids.sha512WithRSAEncryption as string,
  sha256: forge.pki.oids.sha256 as string,
  sha384: forge.pki.oids.sha384 as string,
  sha512: forge.pki.oids.sha512 as string,
  // forge's table has no elliptic-curve entries (RFC 5480, RFC 5758).
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  commonName: forge.pki.oids.commonName as string,
  organizationName: forge.pki.oids.organizationName as string,
  basicConstraints: forge.pki.oids.basicConstraints as string,
  keyUsage: forge.pki.oids.keyUsage as string,
  extKeyUsage: forge.pki.oids.extKeyUsage as string,
  subjectAltName: forge.pki.oids.subjectAltName as string,
  subjectKeyIdentifier: forge.pki.oids.subjectKeyIdentifier as string,
  authorityKeyIdentifier: forge.pki.oids.authorityKeyIdentifier as string,
  serverAuth: forge.pki.oids.serverAuth as string,
  clientAuth: forge.pki.oids.clientAuth as string,
} as const;

export const toBuffer = (binary: string): Buffer => Buffer.from(binary, 'latin1');
export const toBinary = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');

/** Parses one DER structure; BIT STRING contents stay opaque (keys and signatures are not ASN.1 to us). */
export function fromDer(binary: string): Asn1 {
  const options = { strict: true, parseAllBytes: true, decodeBitStrings: false };
  return asn1.fromDer(binary, options as unknown as boolean);
}

export const toDer = (node: Asn1): string => asn1.toDer(node).getBytes();

/**
 * A constructed element (tag byte `tag`) around contents that are already DER.
 * forge has no node for "pre-encoded contents", so encode them as an OCTET
 * STRING (same length octets) and swap the tag byte: this spares re-encoding
 * already-encoded parts (a TBSCertificate, a CA's name) on every certificate.
 */
export function wrapDer(tag: number, encodedParts: readonly string[]): string {
  return String.fromCharCode(tag) + toDer(octetString(encodedParts.join(''))).slice(1);
}
/** A SEQUENCE of already-encoded elements. */
export const sequenceDer = (encodedParts: readonly string[]): string => wrapDer(0x30, encodedParts);

export const sequence = (items: Asn1[]): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
export const set = (items: Asn1[]): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, items);
export const oid = (dotted: string): Asn1 =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(dotted).getBytes());
export const octetString = (binary: string): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, binary);
/** A BIT STRING with no unused bits (signatures, key identifiers' sources). */
export const bitString = (binary: string): Asn1 => bitStringContents(`\0${binary}`);
/** A BIT STRING from its DER contents: the unused-bit count, then the bits (named-bit lists). */
export const bitStringContents = (contents: string): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, contents);
export const boolean = (value: boolean): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BOOLEAN, false, value ? '\xff' : '\0');
export const nullValue = (): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, '');
export const utf8String = (text: string): Asn1 =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTF8, false, forge.util.encodeUtf8(text));
/** A positive INTEGER from its big-endian magnitude (whose first byte must be 0x01..0x7f). */
export const integerBytes = (binary: string): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, binary);
export const smallInteger = (value: number): Asn1 =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(value).getBytes());
export const contextExplicit = (tag: number, inner: Asn1): Asn1 => asn1.create(asn1.Class.CONTEXT_SPECIFIC, tag, true, [inner]);
export const contextPrimitive = (tag: number, binary: string): Asn1 => asn1.create(asn1.Class.CONTEXT_SPECIFIC, tag, false, binary);

/** X.509 Time: UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5). */
export function time(date: Date): Asn1 {
  return date.getUTCFullYear() < 2050
    ? asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(date))
    : asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(date));
}

/** The value of a primitive node, or the empty string for a constructed one. */
export const primitiveValue = (node: Asn1 | undefined): string => (node && typeof node.value === 'string' ? node.value : '');
export const children = (node: Asn1 | undefined): Asn1[] => (node && Array.isArray(node.value) ? node.value : []);
export const oidOf = (node: Asn1 | undefined): string | undefined =>
  node && node.tagClass === asn1.Class.UNIVERSAL && node.type === asn1.Type.OID && typeof node.value === 'string'
    ? asn1.derToOid(node.value)
    : undefined;
export const isUniversal = (node: Asn1 | undefined, type: forge.asn1.Type): node is Asn1 =>
  node !== undefined && node.tagClass === asn1.Class.UNIVERSAL && node.type === type;
export const isContext = (node: Asn1 | undefined, tag: number): node is Asn1 =>
  node !== undefined && node.tagClass === asn1.Class.CONTEXT_SPECIFIC && node.type === tag;
export const Type = asn1.Type;

/**
 * The DER (binary string) inside every PEM block of `label` in `text`. The
 * base64 body is decoded leniently (whitespace skipped, as RFC 7468 allows);
 * what it decodes to is checked by the DER parser and signature check after.
 * forge's PEM reader does the same job several times slower, on the hot path.
 */
export function pemBlocks(text: string, label: string): string[] {
  const begin = `-----BEGIN ${label}-----`;
  const end = `-----END ${label}-----`;
  const blocks: string[] = [];
  let at = text.indexOf(begin);
  while (at >= 0) {
    const bodyStart = at + begin.length;
    const bodyEnd = text.indexOf(end, bodyStart);
    if (bodyEnd < 0) break;
    blocks.push(Buffer.from(text.slice(bodyStart, bodyEnd), 'base64').toString('latin1'));
    at = text.indexOf(begin, bodyEnd + end.length);
  }
  return blocks;
}

/** Binary DER -> PEM with 64-column base64 lines, as openssl writes it. */
export function toPem(label: string, der: string | Buffer): string {
  const body = typeof der === 'string' ? toBuffer(der) : der;
  const base64 = body.toString('base64');
  const lines: string[] = [];
  for (let at = 0; at < base64.length; at += 64) lines.push(base64.slice(at, at + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
