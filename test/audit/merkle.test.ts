import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EMPTY_TREE_HASH,
  TreeHasher,
  consistencyProof,
  hashLeaf,
  inclusionProof,
  rangeHasherOf,
  rootOfLeafHashes,
  verifyConsistency,
  verifyInclusion,
} from '../../src/audit/merkle.js';

// The reference tree of certificate-transparency's merkle_tree_test, as kept by
// transparency-dev/merkle (proof/verify_test.go): eight leaf inputs, the root of
// every prefix, and the inclusion and consistency paths.
const hex = (h: string) => Buffer.from(h, 'hex');
const leafInputs = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(hex);
const roots = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
].map(hex);
// Leaf numbers are 1-based, as in the reference.
const inclusionVectors: { leaf: number; size: number; proof: string[] }[] = [
  { leaf: 1, size: 1, proof: [] },
  {
    leaf: 1,
    size: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    leaf: 6,
    size: 8,
    proof: [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  { leaf: 3, size: 3, proof: ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'] },
  {
    leaf: 2,
    size: 5,
    proof: [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
];
const consistencyVectors: { size1: number; size2: number; proof: string[] }[] = [
  { size1: 1, size2: 1, proof: [] },
  {
    size1: 1,
    size2: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    size1: 6,
    size2: 8,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  {
    size1: 2,
    size2: 5,
    proof: [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
  {
    size1: 6,
    size2: 7,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
];

const leafHashes = leafInputs.map((input) => hashLeaf(input));
const reference = rangeHasherOf(leafHashes);

function flipBit(proof: Buffer[], which: number, bit: number): Buffer[] {
  return proof.map((p, i) => {
    if (i !== which) return p;
    const copy = Buffer.from(p);
    copy[bit >> 3] = (copy[bit >> 3] as number) ^ (1 << (bit & 7));
    return copy;
  });
}

describe('the Merkle tree hash', () => {
  it('of an empty tree is SHA-256 of nothing', () => {
    expect(EMPTY_TREE_HASH.toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(rootOfLeafHashes([])).toEqual(EMPTY_TREE_HASH);
  });

  it.each(roots.map((root, i) => [i + 1, root] as const))('of the first %i reference leaves is the published root', (size, root) => {
    expect(rootOfLeafHashes(leafHashes.slice(0, size)).toString('hex')).toBe(root.toString('hex'));
  });

  it('reports every completed perfect subtree while streaming', () => {
    const seen: string[] = [];
    const tree = new TreeHasher((start, size) => seen.push(`${start}+${size}`));
    leafHashes.forEach((leaf) => tree.addLeafHash(leaf));
    expect(seen).toEqual(['0+2', '2+2', '0+4', '4+2', '6+2', '4+4', '0+8']);
    expect(tree.root()).toEqual(roots[7]);
  });
});

describe('inclusion proofs', () => {
  it.each(inclusionVectors)('for leaf $leaf of $size are the published paths and verify', async ({ leaf, size, proof }) => {
    const generated = await inclusionProof(leaf - 1, size, reference);
    expect(generated.map((p) => p.toString('hex'))).toEqual(proof);
    expect(verifyInclusion(leaf - 1, size, leafHashes[leaf - 1] as Buffer, proof.map(hex), roots[size - 1] as Buffer)).toBe(true);
  });

  it.each(inclusionVectors.filter((v) => v.proof.length > 0))('for leaf $leaf of $size fail when changed', ({ leaf, size, proof }) => {
    const path = proof.map(hex);
    const leafHash = leafHashes[leaf - 1] as Buffer;
    const root = roots[size - 1] as Buffer;
    expect(verifyInclusion(leaf, size, leafHash, path, root)).toBe(false);
    expect(verifyInclusion(leaf - 1, size * 2, leafHash, path, root)).toBe(false);
    expect(verifyInclusion(leaf - 1, size, hashLeaf(Buffer.from('WrongLeaf')), path, root)).toBe(false);
    expect(verifyInclusion(leaf - 1, size, leafHash, path, EMPTY_TREE_HASH)).toBe(false);
    expect(verifyInclusion(leaf - 1, size, leafHash, [...path, root], root)).toBe(false);
    expect(verifyInclusion(leaf - 1, size, leafHash, path.slice(0, -1), root)).toBe(false);
    for (let i = 0; i < path.length; i += 1) expect(verifyInclusion(leaf - 1, size, leafHash, flipBit(path, i, 3), root)).toBe(false);
  });
});

describe('consistency proofs', () => {
  it.each(consistencyVectors)('from $size1 to $size2 are the published proofs and verify', async ({ size1, size2, proof }) => {
    const generated = await consistencyProof(size1, size2, reference);
    expect(generated.map((p) => p.toString('hex'))).toEqual(proof);
    expect(verifyConsistency(size1, size2, roots[size1 - 1] as Buffer, roots[size2 - 1] as Buffer, proof.map(hex))).toBe(true);
  });

  it.each(consistencyVectors.filter((v) => v.proof.length > 0))('from $size1 to $size2 fail when changed', ({ size1, size2, proof }) => {
    const path = proof.map(hex);
    const root1 = roots[size1 - 1] as Buffer;
    const root2 = roots[size2 - 1] as Buffer;
    expect(verifyConsistency(size1, size2, root2, root1, path)).toBe(false);
    expect(verifyConsistency(size1 + 1, size2, root1, root2, path)).toBe(false);
    expect(verifyConsistency(size1, size2 * 2, root1, root2, path)).toBe(false);
    expect(verifyConsistency(size1, size2, root1, root2, [])).toBe(false);
    expect(verifyConsistency(size1, size2, root1, root2, [...path, root2])).toBe(false);
    expect(verifyConsistency(size1, size2, root1, root2, path.slice(0, -1))).toBe(false);
    for (let i = 0; i < path.length; i += 1) expect(verifyConsistency(size1, size2, root1, root2, flipBit(path, i, 4))).toBe(false);
  });

  it('treat the empty and the unchanged tree as RFC 9162 does', () => {
    expect(verifyConsistency(0, 5, EMPTY_TREE_HASH, roots[4] as Buffer, [])).toBe(true);
    expect(verifyConsistency(3, 3, roots[2] as Buffer, roots[2] as Buffer, [])).toBe(true);
    expect(verifyConsistency(3, 3, roots[2] as Buffer, roots[3] as Buffer, [])).toBe(false);
    expect(verifyConsistency(4, 3, roots[3] as Buffer, roots[2] as Buffer, [])).toBe(false);
  });
});

describe('over random trees', () => {
  const leavesOf = (n: number) => Array.from({ length: n }, (_, i) => hashLeaf(Buffer.from(`leaf ${i}`)));

  it('every inclusion proof verifies and a flipped bit does not', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 300 }).chain((n) => fc.tuple(fc.constant(n), fc.nat({ max: n - 1 }), fc.nat({ max: 255 }))),
        async ([n, index, bit]) => {
          const leaves = leavesOf(n);
          const root = rootOfLeafHashes(leaves);
          const proof = await inclusionProof(index, n, rangeHasherOf(leaves));
          expect(verifyInclusion(index, n, leaves[index] as Buffer, proof, root)).toBe(true);
          if (proof.length > 0) expect(verifyInclusion(index, n, leaves[index] as Buffer, flipBit(proof, bit % proof.length, bit), root)).toBe(false);
          const badLeaf = flipBit([leaves[index] as Buffer], 0, bit);
          expect(verifyInclusion(index, n, badLeaf[0] as Buffer, proof, root)).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('every consistency proof verifies and a flipped bit does not', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 300 }).chain((n) => fc.tuple(fc.nat({ max: n }), fc.constant(n), fc.nat({ max: 255 }))),
        async ([m, n, bit]) => {
          const leaves = leavesOf(n);
          const oldRoot = rootOfLeafHashes(leaves.slice(0, m));
          const newRoot = rootOfLeafHashes(leaves);
          const proof = await consistencyProof(m, n, rangeHasherOf(leaves));
          expect(verifyConsistency(m, n, oldRoot, newRoot, proof)).toBe(true);
          if (proof.length > 0) expect(verifyConsistency(m, n, oldRoot, newRoot, flipBit(proof, bit % proof.length, bit))).toBe(false);
          if (m > 0 && m < n) expect(verifyConsistency(m, n, flipBit([oldRoot], 0, bit)[0] as Buffer, newRoot, proof)).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });
});
