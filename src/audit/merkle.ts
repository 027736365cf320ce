import { hash as sha256Once, timingSafeEqual } from 'node:crypto';

/**
 * RFC 6962 / RFC 9162 (section 2.1) Merkle tree hashing, inclusion proofs
 * (PATH) and consistency proofs (PROOF), with the verification algorithms of
 * RFC 9162 sections 2.1.3.2 and 2.1.4.2, so any standard verifier agrees.
 *
 * Indices and sizes are plain numbers (exact up to 2^53); bit operations are
 * written as arithmetic so they stay exact past 2^31.
 */

export const HASH_SIZE = 32;

/** MTH({}) = SHA-256 of the empty string. */
export const EMPTY_TREE_HASH: Buffer = sha256(Buffer.alloc(0));

function sha256(data: Uint8Array): Buffer {
  return sha256Once('sha256', data, 'buffer') as unknown as Buffer;
}

// One scratch buffer per kind of hash: no allocation per interior node but the digest itself.
const nodeScratch = Buffer.alloc(1 + 2 * HASH_SIZE);
nodeScratch[0] = 0x01;

/** Interior node: SHA-256(0x01 || left || right). */
export function hashChildren(left: Uint8Array, right: Uint8Array): Buffer {
  nodeScratch.set(left, 1);
  nodeScratch.set(right, 1 + HASH_SIZE);
  return sha256(nodeScratch);
}

let leafScratch = Buffer.alloc(1024);

/** Leaf: SHA-256(0x00 || bytes). */
export function hashLeaf(bytes: Uint8Array): Buffer {
  if (bytes.length + 1 > leafScratch.length) leafScratch = Buffer.alloc(Math.max(bytes.length + 1, leafScratch.length * 2));
  leafScratch[0] = 0x00;
  leafScratch.set(bytes, 1);
  return sha256(leafScratch.subarray(0, bytes.length + 1));
}

/** The largest power of two strictly smaller than n (n > 1). */
export function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

const isOdd = (x: number): boolean => x % 2 === 1;
const half = (x: number): number => Math.floor(x / 2);

/**
 * Computes MTH over a stream of leaf hashes with a stack of perfect subtrees
 * (at most log2(n) entries): constant memory whatever the size.
 * `onPerfectSubtree` sees every completed perfect subtree (for caching).
 */
export class TreeHasher {
  readonly #stack: { hash: Buffer; size: number }[] = [];
  #count = 0;

  constructor(private readonly onPerfectSubtree?: (start: number, size: number, hash: Buffer) => void) {}

  get size(): number {
    return this.#count;
  }

  /** Adds the next leaf by its leaf hash. */
  addLeafHash(leaf: Buffer): void {
    let entry = { hash: leaf, size: 1 };
    this.#count += 1;
    for (;;) {
      const top = this.#stack[this.#stack.length - 1];
      if (!top || top.size !== entry.size) break;
      this.#stack.pop();
      entry = { hash: hashChildren(top.hash, entry.hash), size: top.size * 2 };
      this.onPerfectSubtree?.(this.#count - entry.size, entry.size, entry.hash);
    }
    this.#stack.push(entry);
  }

  /** MTH of the leaves added so far. */
  root(): Buffer {
    let i = this.#stack.length - 1;
    if (i < 0) return EMPTY_TREE_HASH;
    let root = (this.#stack[i] as { hash: Buffer }).hash;
    for (i -= 1; i >= 0; i -= 1) root = hashChildren((this.#stack[i] as { hash: Buffer }).hash, root);
    return root;
  }
}

/** MTH(D[n]) of an array of leaf hashes. */
export function rootOfLeafHashes(leaves: readonly Buffer[]): Buffer {
  const tree = new TreeHasher();
  for (const leaf of leaves) tree.addLeafHash(leaf);
  return tree.root();
}

/** MTH(D[start:end]); how it is computed (memory, database, cache) is the source's business. */
export type RangeHasher = (start: number, end: number) => Promise<Buffer>;

/** A RangeHasher over leaf hashes held in memory. */
export function rangeHasherOf(leaves: readonly Buffer[]): RangeHasher {
  return async (start, end) => rootOfLeafHashes(leaves.slice(start, end));
}

function checkSize(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`${name} must be a non-negative integer, got ${value}`);
}

/**
 * RFC 9162 2.1.3.1: the inclusion proof PATH(m, D[n]) for leaf `index` in a
 * tree of `size` leaves, leaf-side first.
 */
export async function inclusionProof(index: number, size: number, hashRange: RangeHasher): Promise<Buffer[]> {
  checkSize('index', index);
  checkSize('size', size);
  if (index >= size) throw new RangeError(`leaf ${index} is not in a tree of size ${size}`);
  const path: Buffer[] = [];
  // Iterative form of PATH(m, D[start:end]): collect siblings root-side first, then reverse.
  let start = 0;
  let end = size;
  let m = index;
  while (end - start > 1) {
    const k = largestPowerOfTwoBelow(end - start);
    if (m < k) {
      path.push(await hashRange(start + k, end));
      end = start + k;
    } else {
      path.push(await hashRange(start, start + k));
      start += k;
      m -= k;
    }
  }
  return path.reverse();
}

/**
 * RFC 9162 2.1.4.1: the consistency proof PROOF(m, D[n]) between a tree of
 * `oldSize` leaves and its extension to `newSize`. Empty when m == 0 or m == n.
 */
export async function consistencyProof(oldSize: number, newSize: number, hashRange: RangeHasher): Promise<Buffer[]> {
  checkSize('oldSize', oldSize);
  checkSize('newSize', newSize);
  if (oldSize > newSize) throw new RangeError(`a tree of size ${oldSize} cannot grow into size ${newSize}`);
  if (oldSize === 0 || oldSize === newSize) return [];
  const proof: Buffer[] = [];
  // SUBPROOF(m, D[start:end], b), unrolled: every step appends one sibling, root-side first.
  let start = 0;
  let end = newSize;
  let m = oldSize;
  let complete = true;
  while (m !== end - start) {
    const k = largestPowerOfTwoBelow(end - start);
    if (m <= k) {
      proof.push(await hashRange(start + k, end));
      end = start + k;
    } else {
      proof.push(await hashRange(start, start + k));
      start += k;
      m -= k;
      complete = false;
    }
  }
  if (!complete) proof.push(await hashRange(start, end));
  return proof.reverse();
}

function sameHash(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** RFC 9162 2.1.3.2: the root an inclusion proof leads to, or null when the proof cannot be for this index and size. */
export function rootFromInclusionProof(index: number, size: number, leaf: Uint8Array, proof: readonly Uint8Array[]): Buffer | null {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return null;
  if (leaf.length !== HASH_SIZE || proof.some((p) => p.length !== HASH_SIZE)) return null;
  let fn = index;
  let sn = size - 1;
  let r: Buffer = Buffer.from(leaf);
  for (const p of proof) {
    if (sn === 0) return null;
    if (isOdd(fn) || fn === sn) {
      r = hashChildren(p, r);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 ? r : null;
}

/** True when `proof` shows leaf `index` with hash `leaf` is in the tree of `size` with `root`. */
export function verifyInclusion(index: number, size: number, leaf: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  const computed = rootFromInclusionProof(index, size, leaf, proof);
  return computed !== null && sameHash(computed, root);
}

/**
 * RFC 9162 2.1.4.2: true when `proof` shows the tree of `oldSize` with
 * `oldRoot` is a prefix of the tree of `newSize` with `newRoot`.
 */
export function verifyConsistency(
  oldSize: number,
  newSize: number,
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  if (!Number.isSafeInteger(oldSize) || !Number.isSafeInteger(newSize) || oldSize < 0 || newSize < oldSize) return false;
  if (proof.some((p) => p.length !== HASH_SIZE)) return false;
  if (oldSize === newSize) return proof.length === 0 && sameHash(oldRoot, newRoot);
  if (oldSize === 0) return proof.length === 0;
  // 1. An empty path cannot prove anything between two different non-empty sizes.
  if (proof.length === 0) return false;
  // 2. When the old tree is a perfect subtree, its root is the first node of the path.
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : [...proof];
  // 3., 4.
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  // 5.
  let fr: Buffer = Buffer.from(path[0] as Uint8Array);
  let sr: Buffer = Buffer.from(path[0] as Uint8Array);
  // 6.
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // 7.
  return sn === 0 && fr.length === oldRoot.length && sameHash(fr, oldRoot) && sameHash(sr, newRoot);
}

function isPowerOfTwo(n: number): boolean {
  let k = 1;
  while (k < n) k *= 2;
  return k === n;
}
