import { randomBytes } from 'node:crypto';
import { MAX_IDENTIFIER_BYTES } from './sql-identifiers.js';

/** Hex characters of randomness at the end of every role name (48 bits). */
const SUFFIX_CHARS = 12;

/**
 * A role name for one grant: `<prefix><readable subject>_<random hex>`, at
 * most 63 bytes, only `[a-z0-9_]`, so it needs no quoting to read and a DBA
 * who sees it in `pg_stat_activity` can tell whose it is. The subject part is
 * a hint for people, never trusted: the grant id in the role's comment is what
 * ties it back to the grant.
 */
export function makeRoleName(prefix: string, subject: string, random: Buffer = randomBytes(SUFFIX_CHARS / 2)): string {
  if (!/^[a-z][a-z0-9_]*$/.test(prefix)) throw new TypeError(`makeRoleName: invalid prefix ${JSON.stringify(prefix)}`);
  const suffix = `_${random.toString('hex').slice(0, SUFFIX_CHARS)}`;
  const room = MAX_IDENTIFIER_BYTES - prefix.length - suffix.length;
  const readable =
    subject
      .normalize('NFKD')
      // Accents go (é -> e), then anything outside a-z0-9 becomes one underscore.
      .replace(/[\u0300-\u036f]/g, '')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .slice(0, Math.max(room, 0))
      .replace(/_+$/, '') || 'grant';
  return `${prefix}${readable.slice(0, Math.max(room, 0))}${suffix}`;
}
