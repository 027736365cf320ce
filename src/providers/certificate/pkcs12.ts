import { randomBytes } from 'node:crypto';
import forge from 'node-forge';

/**
 * A PKCS#12 bundle of a broker-generated RSA key and its certificate chain,
 * made by forge: the key shrouded with PBES2 / PBKDF2 / AES-256-CBC, the
 * whole file MAC'd. forge can only write RSA keys and can re-encode only
 * RSA-signed certificates faithfully, so callers offer this for an RSA key
 * issued by an RSA CA.
 *
 * The password is random (144 bits), so the iteration count guards nothing a
 * brute force could reach; forge's default (2048) keeps this path fast.
 */
export function buildPkcs12(privateKeyPem: string, certificatePems: readonly string[]): { pkcs12: string; password: string } {
  const password = randomBytes(18).toString('base64url');
  const key = forge.pki.privateKeyFromPem(privateKeyPem);
  const certificates = certificatePems.map((pem) => forge.pki.certificateFromPem(pem));
  const pfx = forge.pkcs12.toPkcs12Asn1(key, certificates, password, { algorithm: 'aes256', friendlyName: 'latchkey' });
  return { pkcs12: Buffer.from(forge.asn1.toDer(pfx).getBytes(), 'latin1').toString('base64'), password };
}
