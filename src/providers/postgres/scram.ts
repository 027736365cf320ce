import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { Secret } from '../../secret.js';

const pbkdf2Async = promisify(pbkdf2);

/** PostgreSQL's default `scram_iterations`. */
export const SCRAM_ITERATIONS = 4096;
/** PostgreSQL's salt length (SCRAM_DEFAULT_SALT_LEN). */
const SALT_BYTES = 16;

export interface ScramOptions {
  /** Fixed salt, for tests that compare with PostgreSQL's own verifier. */
  readonly salt?: Buffer;
  readonly iterations?: number;
}

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password
 * (RFC 5802 / RFC 7677, as in PostgreSQL's `scram_build_secret`):
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, base64.
 *
 * Sending this to `CREATE ROLE ... PASSWORD` instead of the password means
 * the plaintext never reaches the server, so it cannot land in a server log.
 *
 * The password must be ASCII: SASLprep, which PostgreSQL applies to other
 * passwords, leaves printable ASCII unchanged, and the passwords latchkey
 * generates are base64url.
 */
export async function scramSha256Verifier(password: Secret<string>, options: ScramOptions = {}): Promise<string> {
  const plain = password.reveal();
  if (!/^[\x20-\x7e]*$/.test(plain)) throw new TypeError('scramSha256Verifier: the password must be printable ASCII');
  const salt = options.salt ?? randomBytes(SALT_BYTES);
  const iterations = options.iterations ?? SCRAM_ITERATIONS;
  const saltedPassword = await pbkdf2Async(plain, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', saltedPassword).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', saltedPassword).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
