import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canonicalize } from './canonical-json.ts';
import {
  computeRoot,
  createConsistencyProof,
  createInclusionProof,
  EMPTY_ROOT,
  hashLeaf,
  MerkleFrontier,
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

  test('known-answer inclusion proof of leaf 0 in the 8-leaf tree', () => {
    const proof = createInclusionProof(CT_LEAVES, 0).map((b) => b.toString('hex'));
    assert.deepEqual(proof, [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ]);
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
