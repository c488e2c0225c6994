import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { canonicalize } from './canonical-json.ts';
import {
  computeRoot,
  consistencyProofRanges,
  createConsistencyProof,
  createInclusionProof,
  EMPTY_ROOT,
  hashChildren,
  hashLeaf,
  hashLeafText,
  inclusionProofRanges,
  isPowerOfTwo,
  MerkleFrontier,
  rootFromInclusionProof,
  rootsFromConsistencyProof,
  verifyConsistencyProof,
  verifyInclusionProof,
} from './merkle.ts';

// Certificate Transparency's reference leaves and tree heads for sizes 1..8 (RFC 6962 test data).
const CT_LEAVES = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map((h) => hashLeaf(Buffer.from(h, 'hex')));
const CT_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

describe('RFC 6962 Merkle tree', () => {
  test('known-answer tree heads for sizes 0..8', () => {
    assert.equal(
      EMPTY_ROOT.toString('hex'),
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    for (let n = 1; n <= 8; n += 1) {
      assert.equal(computeRoot(CT_LEAVES.slice(0, n)).toString('hex'), CT_ROOTS[n - 1], `size ${n}`);
    }
  });

  test('a text leaf is the leaf of its UTF-8 bytes; children of any length hash as defined', () => {
    for (const text of ['', 'x', '{"a":"naïve 😀 €"}', 'lone \ud800 surrogate', '\u0000nul']) {
      assert.deepEqual(hashLeafText(text), hashLeaf(Buffer.from(text, 'utf8')), JSON.stringify(text));
    }
    // Each call hashes its own children (the input buffer is reused between calls).
    const [a, b, c] = CT_LEAVES as [Buffer, Buffer, Buffer];
    const ab = hashChildren(a, b);
    assert.deepEqual(
      hashChildren(b, c),
      createHash('sha256')
        .update(Buffer.from([1]))
        .update(b)
        .update(c)
        .digest(),
    );
    assert.equal(ab.toString('hex'), CT_ROOTS[1]);
    assert.deepEqual(
      hashChildren(Buffer.from('ab'), Buffer.from('c')),
      createHash('sha256')
        .update(Buffer.from([1, 0x61, 0x62, 0x63]))
        .digest(),
    );
  });

  test('known-answer inclusion proof of leaf 0 in the 8-leaf tree', () => {
    const proof = createInclusionProof(CT_LEAVES, 0).map((b) => b.toString('hex'));
    assert.deepEqual(proof, [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ]);
  });

  // Certificate Transparency's reference audit paths and consistency proofs over the leaves above.
  const CT_INCLUSION: [index: number, size: number, proof: string[]][] = [
    [0, 1, []],
    [
      5,
      8,
      [
        'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
        'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
        'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
      ],
    ],
    [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
    [
      1,
      5,
      [
        '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
        '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
        'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      ],
    ],
  ];
  const CT_CONSISTENCY: [from: number, to: number, proof: string[]][] = [
    [1, 1, []],
    [
      1,
      8,
      [
        '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
        '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
        '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
      ],
    ],
    [
      6,
      8,
      [
        '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
        'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
        'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
      ],
    ],
    [
      2,
      5,
      [
        '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
        'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      ],
    ],
    [
      2,
      8,
      [
        '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
        '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
      ],
    ],
  ];

  test('known-answer audit paths and consistency proofs, and they verify against the known roots', () => {
    const root = (size: number) => Buffer.from(CT_ROOTS[size - 1] as string, 'hex');
    for (const [index, size, expected] of CT_INCLUSION) {
      const proof = createInclusionProof(CT_LEAVES.slice(0, size), index);
      assert.deepEqual(
        proof.map((b) => b.toString('hex')),
        expected,
        `path of ${index} in ${size}`,
      );
      assert.ok(verifyInclusionProof(CT_LEAVES[index] as Buffer, index, size, proof, root(size)));
    }
    for (const [from, to, expected] of CT_CONSISTENCY) {
      const proof = createConsistencyProof(CT_LEAVES.slice(0, to), from);
      assert.deepEqual(
        proof.map((b) => b.toString('hex')),
        expected,
        `proof ${from} → ${to}`,
      );
      assert.ok(verifyConsistencyProof(from, to, proof, root(from), root(to)));
    }
  });

  test('proof ranges do not overlap, so one pass over the leaves computes every node', () => {
    const covered = (ranges: { start: number; end: number }[], size: number) => {
      const hits = new Array<number>(size).fill(0);
      for (const { start, end } of ranges) {
        assert.ok(start < end, 'a range holds a leaf');
        for (let i = start; i < end; i += 1) hits[i] = (hits[i] as number) + 1;
      }
      return hits;
    };
    for (let size = 1; size <= 40; size += 1) {
      for (let index = 0; index < size; index += 1) {
        const hits = covered(inclusionProofRanges(index, size), size);
        // Every leaf but the proved one is in exactly one range.
        assert.deepEqual(
          hits,
          hits.map((_, i) => (i === index ? 0 : 1)),
          `${index}/${size}`,
        );
      }
      for (let from = 1; from <= size; from += 1) {
        const hits = covered(consistencyProofRanges(from, size), size);
        assert.ok(
          hits.every((n) => n <= 1),
          `${from} → ${size}`,
        );
      }
    }
    assert.throws(() => inclusionProofRanges(3, 3), RangeError);
    assert.throws(() => inclusionProofRanges(-1, 3), RangeError);
    assert.throws(() => consistencyProofRanges(0, 3), RangeError);
    assert.throws(() => consistencyProofRanges(4, 3), RangeError);
  });

  test('the roots a proof leads to; a proof of the wrong length leads nowhere', () => {
    const leaves = Array.from({ length: 11 }, (_, i) => hashLeaf(Uint8Array.of(i)));
    const proof = createInclusionProof(leaves, 6);
    assert.deepEqual(rootFromInclusionProof(leaves[6] as Buffer, 6, 11, proof), computeRoot(leaves));
    assert.equal(rootFromInclusionProof(leaves[6] as Buffer, 6, 11, proof.slice(1)), null);
    assert.equal(rootFromInclusionProof(leaves[6] as Buffer, 6, 11, [...proof, EMPTY_ROOT]), null);
    assert.equal(rootFromInclusionProof(leaves[6] as Buffer, 11, 11, proof), null);
    const consistency = createConsistencyProof(leaves, 5);
    assert.deepEqual(rootsFromConsistencyProof(5, 11, consistency, EMPTY_ROOT), {
      oldRoot: computeRoot(leaves.slice(0, 5)),
      newRoot: computeRoot(leaves),
    });
    assert.equal(rootsFromConsistencyProof(5, 11, consistency.slice(1), EMPTY_ROOT), null);
    assert.equal(rootsFromConsistencyProof(5, 11, [...consistency, EMPTY_ROOT], EMPTY_ROOT), null);
    assert.equal(rootsFromConsistencyProof(0, 11, consistency, EMPTY_ROOT), null);
  });

  test('incremental frontier agrees with the recursive definition at every size', () => {
    const leaves = Array.from({ length: 40 }, (_, i) => hashLeaf(Uint8Array.of(i, i * 3)));
    const frontier = new MerkleFrontier();
    for (let n = 1; n <= leaves.length; n += 1) {
      frontier.append(leaves[n - 1] as Buffer);
      assert.ok(frontier.root().equals(computeRoot(leaves.slice(0, n))), `size ${n}`);
    }
  });

  test('a frontier rebuilt from its saved subtrees goes on exactly as the original', () => {
    const leaves = Array.from({ length: 23 }, (_, i) => hashLeaf(Buffer.from(`leaf ${i}`)));
    for (let cut = 0; cut <= leaves.length; cut += 1) {
      const original = new MerkleFrontier();
      for (const leaf of leaves.slice(0, cut)) original.append(leaf);
      const rebuilt = MerkleFrontier.fromSubtrees(original.subtrees());
      assert.ok(rebuilt);
      assert.equal(rebuilt.size, cut);
      for (const leaf of leaves.slice(cut)) rebuilt.append(leaf);
      assert.deepEqual(rebuilt.root(), computeRoot(leaves), `cut at ${cut}`);
    }
  });

  test('a subtree appended by its root is the same tree as its leaves appended; only where one can start', () => {
    const leaves = Array.from({ length: 29 }, (_, i) => hashLeaf(Buffer.from(`leaf ${i}`)));
    for (const size of [1, 2, 4, 8]) {
      for (let before = 0; before + size <= 20; before += size) {
        const frontier = new MerkleFrontier();
        for (const leaf of leaves.slice(0, before)) frontier.append(leaf);
        frontier.appendSubtree(size, computeRoot(leaves.slice(before, before + size)));
        for (const leaf of leaves.slice(before + size)) frontier.append(leaf);
        assert.equal(frontier.size, leaves.length);
        assert.deepEqual(frontier.root(), computeRoot(leaves), `${size} after ${before}`);
      }
    }
    const frontier = new MerkleFrontier();
    for (const leaf of leaves.slice(0, 6)) frontier.append(leaf);
    assert.throws(() => frontier.appendSubtree(4, EMPTY_ROOT), /a subtree of 4 leaves cannot follow 6/);
    assert.throws(() => frontier.appendSubtree(3, EMPTY_ROOT), RangeError);
    assert.equal(frontier.size, 6);
  });

  test('subtrees that cannot be a frontier are refused', () => {
    const hash = hashLeaf(Buffer.from('x'));
    assert.equal(MerkleFrontier.fromSubtrees([{ size: 3, hash }]), null);
    assert.equal(
      MerkleFrontier.fromSubtrees([
        { size: 2, hash },
        { size: 4, hash },
      ]),
      null,
    );
    assert.equal(
      MerkleFrontier.fromSubtrees([
        { size: 2, hash },
        { size: 2, hash },
      ]),
      null,
    );
    assert.equal(MerkleFrontier.fromSubtrees([{ size: 1, hash: hash.subarray(0, 31) }]), null);
    assert.equal(MerkleFrontier.fromSubtrees([{ size: 0, hash }]), null);
    assert.equal(MerkleFrontier.fromSubtrees([])?.size, 0);
  });

  test('every inclusion proof verifies and a wrong leaf, index or root does not', () => {
    const leaves = Array.from({ length: 21 }, (_, i) => hashLeaf(Uint8Array.of(i)));
    for (let size = 1; size <= leaves.length; size += 1) {
      const tree = leaves.slice(0, size);
      const root = computeRoot(tree);
      for (let i = 0; i < size; i += 1) {
        const proof = createInclusionProof(tree, i);
        assert.ok(verifyInclusionProof(tree[i] as Buffer, i, size, proof, root), `${i}/${size}`);
        assert.ok(!verifyInclusionProof(hashLeaf(Uint8Array.of(99)), i, size, proof, root));
        if (size > 1) assert.ok(!verifyInclusionProof(tree[i] as Buffer, (i + 1) % size, size, proof, root));
      }
    }
  });

  test('every consistency proof verifies and fails against a forked history', () => {
    const leaves = Array.from({ length: 17 }, (_, i) => hashLeaf(Uint8Array.of(i)));
    for (let n = 1; n <= leaves.length; n += 1) {
      for (let m = 1; m <= n; m += 1) {
        const proof = createConsistencyProof(leaves.slice(0, n), m);
        const oldRoot = computeRoot(leaves.slice(0, m));
        const newRoot = computeRoot(leaves.slice(0, n));
        assert.ok(verifyConsistencyProof(m, n, proof, oldRoot, newRoot), `${m}->${n}`);
        const forked = [...leaves.slice(0, m - 1), hashLeaf(Uint8Array.of(200))];
        if (m < n) assert.ok(!verifyConsistencyProof(m, n, proof, computeRoot(forked), newRoot));
      }
    }
  });

  test('proofs hold in trees of more than 2^31 leaves (sizes are not cut to 32 bits)', () => {
    // A tree of one repeated leaf: the root of a run depends only on its length, so the nodes of a
    // proof in a tree of billions of leaves can be computed from the ranges.
    const leaf = hashLeaf(Buffer.from('x'));
    const roots = new Map<number, Buffer>([[1, leaf]]);
    const mth = (n: number): Buffer => {
      let root = roots.get(n);
      if (!root) {
        let k = 1;
        while (k * 2 < n) k *= 2;
        root = hashChildren(mth(k), mth(n - k));
        roots.set(n, root);
      }
      return root;
    };
    const node = ({ start, end }: { start: number; end: number }) => mth(end - start);
    for (const [from, to] of [
      [2 ** 32 + 1, 2 ** 32 + 3],
      [2 ** 31, 2 ** 31 + 5],
      [2 ** 33, 2 ** 34 + 1],
      [2 ** 52 + 1, 2 ** 52 + 2],
    ] as const) {
      const proof = consistencyProofRanges(from, to).map(node);
      assert.ok(verifyConsistencyProof(from, to, proof, mth(from), mth(to)), `${from} → ${to}`);
      const path = inclusionProofRanges(from, to).map(node);
      assert.ok(verifyInclusionProof(leaf, from, to, path, mth(to)), `${from} in ${to}`);
    }
    assert.ok(isPowerOfTwo(2 ** 40) && !isPowerOfTwo(2 ** 32 + 1) && !isPowerOfTwo(0));
  });
});

describe('RFC 8785 canonical JSON', () => {
  test('known answer from RFC 8785 §3.2.4 (numbers, strings, literals, key order)', () => {
    const input = JSON.parse(
      '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
    );
    assert.equal(
      canonicalize(input),
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  test('keys sorted by UTF-16 code units, nested, undefined dropped', () => {
    assert.equal(
      canonicalize({ b: 1, a: { d: [1, 'x'], c: null }, u: undefined }),
      '{"a":{"c":null,"d":[1,"x"]},"b":1}',
    );
    // U+20AC (€) sorts after U+00FC (ü) and before the surrogate pair of U+1F600.
    assert.equal(canonicalize({ '😀': 1, '€': 2, ü: 3 }), '{"ü":3,"€":2,"😀":1}');
  });

  test('refuses values JSON cannot represent', () => {
    assert.throws(() => canonicalize(Number.NaN), TypeError);
    assert.throws(() => canonicalize({ a: 1n }), TypeError);
  });
});
