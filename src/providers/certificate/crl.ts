import type { CertificateAuthority } from './authority.js';
import {
  bitString,
  contextExplicit,
  contextPrimitive,
  integerBytes,
  octetString,
  oid,
  sequence,
  sequenceDer,
  smallInteger,
  time,
  toBuffer,
  toDer,
  toPem,
  type Asn1,
} from './der.js';

const OID_CRL_NUMBER = '2.5.29.20';
const OID_AUTHORITY_KEY_IDENTIFIER = '2.5.29.35';

/** A revoked certificate that has not expired yet. */
export interface RevokedCertificate {
  /** Serial, hex (the grant's provider reference). */
  readonly serial: string;
  readonly revokedAt: Date;
}

/** Big-endian bytes of a non-negative integer as a positive DER INTEGER body. */
function positiveInteger(bytes: Buffer): Asn1 {
  let body = bytes;
  while (body.length > 1 && body[0] === 0 && ((body[1] as number) & 0x80) === 0) body = body.subarray(1);
  if (((body[0] as number) & 0x80) !== 0) body = Buffer.concat([Buffer.from([0]), body]);
  return integerBytes(body.toString('latin1'));
}

function numberBytes(value: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(value))));
  return out;
}

/**
 * An X.509 v2 CRL (RFC 5280 section 5) signed by the target's CA: the
 * certificates whose grants were revoked and have not yet expired. The CRL
 * number is the issue time in seconds, so it grows across replicas;
 * `nextUpdate` is close, since certificates here live minutes.
 */
export async function buildCrl(
  authority: CertificateAuthority,
  revoked: readonly RevokedCertificate[],
  now: Date,
  validitySeconds: number,
): Promise<{ der: Buffer; pem: string }> {
  const entries = revoked.map((r) => sequence([positiveInteger(Buffer.from(r.serial, 'hex')), time(r.revokedAt)]));
  const extensions = sequence([
    sequence([oid(OID_AUTHORITY_KEY_IDENTIFIER), octetString(toDer(sequence([contextPrimitive(0, authority.keyIdentifier)])))]),
    sequence([oid(OID_CRL_NUMBER), octetString(toDer(positiveInteger(numberBytes(now.getTime() / 1000))))]),
  ]);
  const tbs = sequenceDer([
    toDer(smallInteger(1)), // v2
    authority.signer.algorithm,
    authority.subject,
    toDer(time(now)),
    toDer(time(new Date(now.getTime() + validitySeconds * 1000))),
    ...(entries.length > 0 ? [toDer(sequence(entries))] : []),
    toDer(contextExplicit(0, extensions)),
  ]);
  const signature = await authority.signer.sign(toBuffer(tbs));
  const der = toBuffer(sequenceDer([tbs, authority.signer.algorithm, toDer(bitString(signature.toString('latin1')))]));
  return { der, pem: toPem('X509 CRL', der) };
}
