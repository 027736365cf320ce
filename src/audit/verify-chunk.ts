import { HASH_SIZE, hashLeaf } from './merkle.js';

/**
 * The per-line half of offline verification, independent line by line so it
 * can run in worker threads: hash the leaf and pull out `seq` and `prev` for
 * the sequential checks.
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

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Index just past the JSON string starting at `at` (a quote), or -1. */
function skipString(line: Uint8Array, at: number): number {
  for (let i = at + 1; i < line.length; i += 1) {
    const c = line[i];
    if (c === BACKSLASH) i += 1;
    else if (c === QUOTE) return i + 1;
  }
  return -1;
}

/** Index just past the JSON value starting at `at`, or -1 (strings, numbers, literals, nested containers). */
function skipValue(line: Uint8Array, at: number): number {
  const first = line[at];
  if (first === QUOTE) return skipString(line, at);
  if (first !== 0x7b && first !== 0x5b) {
    let i = at;
    while (i < line.length && line[i] !== 0x2c && line[i] !== 0x7d && line[i] !== 0x5d) i += 1;
    return i > at ? i : -1;
  }
  let depth = 0;
  for (let i = at; i < line.length; i += 1) {
    const c = line[i];
    if (c === QUOTE) {
      i = skipString(line, i) - 1;
      if (i < 0) return -1;
    } else if (c === 0x7b || c === 0x5b) depth += 1;
    else if (c === 0x7d || c === 0x5d) {
      depth -= 1;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

const SEQ_KEY = Buffer.from('"seq"');
const PREV_KEY = Buffer.from('"prev"');

function keyIs(line: Uint8Array, start: number, end: number, key: Buffer): boolean {
  if (end - start !== key.length) return false;
  for (let i = 0; i < key.length; i += 1) if (line[start + i] !== key[i]) return false;
  return true;
}

/**
 * Reads the top-level `seq` and `prev` of one exported event without building
 * the whole object: a scan that skips nested values, so a `seq` or `prev`
 * inside a claim or scope is never mistaken for the event's own. Integrity does
 * not depend on parsing: the leaf hash covers the line's exact bytes, and any
 * change breaks the chain or the signed root. Returns null for a line that is
 * not a JSON object of that shape.
 */
export function topLevelSeqAndPrev(line: Uint8Array): { seq: number; prev: string | undefined } | null {
  if (line[0] !== 0x7b) return null;
  let seq: number | undefined;
  let prev: string | undefined;
  let i = 1;
  while (i < line.length) {
    if (line[i] === 0x7d) return seq === undefined ? null : { seq, prev };
    const keyEnd = skipString(line, i);
    if (line[i] !== QUOTE || keyEnd < 0 || line[keyEnd] !== 0x3a) return null;
    const valueStart = keyEnd + 1;
    const valueEnd = skipValue(line, valueStart);
    if (valueEnd < 0) return null;
    if (keyIs(line, i, keyEnd, SEQ_KEY)) {
      const text = Buffer.from(line.buffer, line.byteOffset + valueStart, valueEnd - valueStart).toString('latin1');
      if (!/^(0|[1-9]\d{0,15})$/.test(text)) return null;
      seq = Number(text);
    } else if (keyIs(line, i, keyEnd, PREV_KEY)) {
      if (line[valueStart] !== QUOTE) return null;
      prev = Buffer.from(line.buffer, line.byteOffset + valueStart + 1, valueEnd - valueStart - 2).toString('latin1');
    }
    i = valueEnd;
    if (line[i] === 0x2c) i += 1;
    else if (line[i] !== 0x7d) return null;
  }
  return null;
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
    const event = topLevelSeqAndPrev(line);
    if (event === null || !Number.isSafeInteger(event.seq)) {
      return partial(i, { offset: i, kind: 'malformed', message: `line ${index + 1} is not an audit event with a seq` });
    }
    if (event.prev !== undefined) {
      const prev = Buffer.from(event.prev, 'base64');
      if (prev.length !== HASH_SIZE || prev.toString('base64') !== event.prev) {
        return partial(i, { offset: i, kind: 'malformed', message: `event ${index} has a prev that is not a base64 SHA-256 hash` });
      }
      prevs.set(prev, i * HASH_SIZE);
      hasPrev[i] = 1;
    }
    seqs[i] = event.seq;
    leafHashes.set(hashLeaf(line), i * HASH_SIZE);
  }
  return { count: lines, leafHashes, seqs, prevs, hasPrev };

  function partial(count: number, problem: NonNullable<ChunkResult['problem']>): ChunkResult {
    return { count, leafHashes, seqs, prevs, hasPrev, problem };
  }
}
