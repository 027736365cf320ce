import type { Queryable } from '../store/database.js';
import { EMPTY_TREE_HASH, TreeHasher, consistencyProof, hashChildren, inclusionProof, largestPowerOfTwoBelow } from './merkle.js';

/** Perfect subtrees at least this large are remembered: they never change once complete. */
const CACHE_MIN_LEAVES = 256;
const CACHE_MAX_ENTRIES = 200_000;
const PAGE_ROWS = 20_000;

/**
 * The audit log's Merkle tree, read from `audit_events.leaf_hash` (leaf index
 * = seq). Hashes of complete perfect subtrees are cached in memory, so the
 * root of a growing log and proofs against it cost little more than the new
 * leaves.
 */
export class LogTree {
  readonly #cache = new Map<string, Buffer>();

  constructor(private readonly db: Queryable) {}

  /** The number of committed events (= the next seq). */
  async size(): Promise<number> {
    const result = await this.db.query<{ size: string }>('SELECT coalesce(max(seq) + 1, 0) AS size FROM audit_events');
    return Number(result.rows[0]?.size ?? 0);
  }

  /** MTH(D[0:size]). */
  async root(size: number): Promise<Buffer> {
    return size === 0 ? EMPTY_TREE_HASH : this.hashRange(0, size);
  }

  /** The leaf hash stored for event `seq`. */
  async leafHash(seq: number): Promise<Buffer | undefined> {
    const result = await this.db.query<{ leaf_hash: Buffer }>('SELECT leaf_hash FROM audit_events WHERE seq = $1', [seq]);
    return result.rows[0]?.leaf_hash;
  }

  inclusionProof(index: number, size: number): Promise<Buffer[]> {
    return inclusionProof(index, size, (start, end) => this.hashRange(start, end));
  }

  consistencyProof(oldSize: number, newSize: number): Promise<Buffer[]> {
    return consistencyProof(oldSize, newSize, (start, end) => this.hashRange(start, end));
  }

  /** MTH(D[start:end]): split into perfect subtrees (left to right, largest first), folded from the right. */
  async hashRange(start: number, end: number): Promise<Buffer> {
    if (end <= start) throw new RangeError(`empty range ${start}..${end}`);
    const chunks: Buffer[] = [];
    let at = start;
    while (at < end) {
      const remaining = end - at;
      const size = remaining === 1 ? 1 : isPowerOfTwo(remaining) ? remaining : largestPowerOfTwoBelow(remaining);
      chunks.push(await this.perfectSubtree(at, size));
      at += size;
    }
    let root = chunks.pop() as Buffer;
    while (chunks.length > 0) root = hashChildren(chunks.pop() as Buffer, root);
    return root;
  }

  async perfectSubtree(start: number, size: number): Promise<Buffer> {
    const cached = this.#cache.get(`${start}:${size}`);
    if (cached) return cached;
    const tree = new TreeHasher((offset, subtreeSize, hash) => {
      if (subtreeSize >= CACHE_MIN_LEAVES && this.#cache.size < CACHE_MAX_ENTRIES) this.#cache.set(`${start + offset}:${subtreeSize}`, hash);
    });
    for (let from = start; from < start + size; from += PAGE_ROWS) {
      const to = Math.min(start + size, from + PAGE_ROWS);
      const page = await this.db.query<{ leaf_hash: Buffer }>(
        'SELECT leaf_hash FROM audit_events WHERE seq >= $1 AND seq < $2 ORDER BY seq',
        [from, to],
      );
      if (page.rows.length !== to - from) {
        throw new Error(`the audit log has ${page.rows.length} events where ${to - from} are expected in seq ${from}..${to - 1}: events are missing`);
      }
      for (const row of page.rows) tree.addLeafHash(row.leaf_hash);
    }
    return tree.root();
  }
}

function isPowerOfTwo(n: number): boolean {
  let k = 1;
  while (k < n) k *= 2;
  return k === n;
}
