import canonicalize from 'canonicalize';
import { HASH_SIZE, hashLeaf } from './merkle.js';

/**
 * The per-line half of offline verification, independent line by line so it
 * can run in worker threads: parse, check RFC 8785 form, hash the leaf, and
 * pull out `seq` and `prev` for the sequential checks.
 */

/** What one chunk of complete lines yields. */
export interface ChunkResult {
  /** Lines checked before a problem (or all of them). */
  readonly count: number;
  /** count * 32 bytes of leaf hashes. */
  readonly leafHashes: Uint8Array;
  readonly seqs: Float64Array;
  /** count * 32 bytes of `prev` hashes; `hasPrev[i]` says whether line i has one. */
  readonly prevs: Uint8Array;
  readonly hasPrev: Uint8Array;
  /** The first line in the chunk that is not a canonical event, relative to the chunk. */
  readonly problem?: { readonly offset: number; readonly kind: 'malformed' | 'not_canonical'; readonly message: string };
}

/** True when every object's keys are in UTF-16 code-unit order, as RFC 8785 sorts them. */
function keysSorted(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return true;
  if (Array.isArray(value)) {
    for (const item of value) if (!keysSorted(item)) return false;
    return true;
  }
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i += 1) {
    if (i > 0 && !((keys[i - 1] as string) < (keys[i] as string))) return false;
    if (!keysSorted((value as Record<string, unknown>)[keys[i] as string])) return false;
  }
  return true;
}

/**
 * RFC 8785 check of a parsed line. Fast path: JSON.stringify (whose string and
 * number forms are the ones RFC 8785 prescribes) reproduces the text and keys
 * are sorted; anything else (integer-like keys, which JavaScript reorders) is
 * decided by the full canonicalization.
 */
export function isCanonical(value: unknown, text: string): boolean {
  if (JSON.stringify(value) === text && keysSorted(value)) return true;
  return canonicalize(value) === text;
}

/** Checks every line of `data` (complete lines, each ending in "\n" except maybe the last). */
export function checkChunk(data: Uint8Array, firstIndex: number): ChunkResult {
  const buffer = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let lines = 0;
  for (let at = buffer.indexOf(0x0a); at >= 0; at = buffer.indexOf(0x0a, at + 1)) lines += 1;
  if (buffer.length > 0 && buffer[buffer.length - 1] !== 0x0a) lines += 1;
  const leafHashes = new Uint8Array(lines * HASH_SIZE);
  const prevs = new Uint8Array(lines * HASH_SIZE);
  const hasPrev = new Uint8Array(lines);
  const seqs = new Float64Array(lines);
  let start = 0;
  for (let i = 0; i < lines; i += 1) {
    const nl = buffer.indexOf(0x0a, start);
    const end = nl < 0 ? buffer.length : nl;
    const line = buffer.subarray(start, end);
    start = end + 1;
    const index = firstIndex + i;
    const text = line.toString('utf8');
    let event: { seq?: unknown; prev?: unknown };
    try {
      event = JSON.parse(text) as typeof event;
    } catch {
      return partial(i, { offset: i, kind: 'malformed', message: `line ${index + 1} is not JSON` });
    }
    if (typeof event !== 'object' || event === null || Array.isArray(event) || !Number.isSafeInteger(event.seq)) {
      return partial(i, { offset: i, kind: 'malformed', message: `line ${index + 1} is not an audit event with a seq` });
    }
    if (!isCanonical(event, text)) {
      return partial(i, { offset: i, kind: 'not_canonical', message: `event ${index} is not in RFC 8785 canonical form: it was edited` });
    }
    if (event.prev !== undefined) {
      const prev = typeof event.prev === 'string' ? Buffer.from(event.prev, 'base64') : Buffer.alloc(0);
      if (prev.length !== HASH_SIZE || prev.toString('base64') !== event.prev) {
        return partial(i, { offset: i, kind: 'malformed', message: `event ${index} has a prev that is not a base64 SHA-256 hash` });
      }
      prevs.set(prev, i * HASH_SIZE);
      hasPrev[i] = 1;
    }
    seqs[i] = event.seq as number;
    leafHashes.set(hashLeaf(line), i * HASH_SIZE);
  }
  return { count: lines, leafHashes, seqs, prevs, hasPrev };

  function partial(count: number, problem: NonNullable<ChunkResult['problem']>): ChunkResult {
    return { count, leafHashes, seqs, prevs, hasPrev, problem };
  }
}
