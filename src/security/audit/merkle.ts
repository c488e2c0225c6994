// RFC 6962 Merkle tree hashing over audit records: leaf SHA-256(0x00‖d), node SHA-256(0x01‖l‖r),
// empty tree SHA-256(""). Tree heads go into signed checkpoints; proofs let a client check a record.
import { createHash } from 'node:crypto';

/** SHA-256 of a leaf's data with the RFC 6962 0x00 domain prefix. */
export function hashLeaf(data: Uint8Array): Buffer {
  return createHash('sha256').update(Uint8Array.of(0)).update(data).digest();
}

/** SHA-256 of two child hashes with the RFC 6962 0x01 domain prefix. */
export function hashChildren(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(Uint8Array.of(1)).update(left).update(right).digest();
}

/** The root of an empty tree. */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

/**
 * Incremental tree head: append leaf hashes one by one, read the root at any size in O(log n)
 * memory. Used to compare a log of any length with its checkpoints in a single pass.
 */
export class MerkleFrontier {
  /** Roots of the perfect subtrees that make up the tree, largest (leftmost) first. */
  private readonly stack: { size: number; hash: Buffer }[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  append(leafHash: Buffer): void {
    let node = { size: 1, hash: leafHash };
    let top = this.stack[this.stack.length - 1];
    while (top && top.size === node.size) {
      this.stack.pop();
      node = { size: top.size * 2, hash: hashChildren(top.hash, node.hash) };
      top = this.stack[this.stack.length - 1];
    }
    this.stack.push(node);
    this.count += 1;
  }

  /** The roots of the perfect subtrees, largest first: all it takes to go on appending later. */
  subtrees(): readonly { size: number; hash: Buffer }[] {
    return this.stack.map((node) => ({ size: node.size, hash: Buffer.from(node.hash) }));
  }

  /**
   * A frontier that goes on from `subtrees()` saved earlier; null when they cannot be one (sizes not
   * strictly decreasing powers of two, hashes not 32 bytes).
   */
  static fromSubtrees(subtrees: readonly { size: number; hash: Buffer }[]): MerkleFrontier | null {
    const frontier = new MerkleFrontier();
    let previous = Number.POSITIVE_INFINITY;
    for (const { size, hash } of subtrees) {
      const powerOfTwo = Number.isSafeInteger(size) && size > 0 && 2 ** Math.round(Math.log2(size)) === size;
      if (!powerOfTwo || size >= previous || hash.length !== 32) return null;
      frontier.stack.push({ size, hash: Buffer.from(hash) });
      frontier.count += size;
      previous = size;
    }
    return frontier;
  }

  /** RFC 6962 MTH of the leaves appended so far. */
  root(): Buffer {
    const last = this.stack[this.stack.length - 1];
    if (!last) return EMPTY_ROOT;
    let hash = last.hash;
    for (let i = this.stack.length - 2; i >= 0; i -= 1) {
      hash = hashChildren((this.stack[i] as { hash: Buffer }).hash, hash);
    }
    return hash;
  }
}

/** RFC 6962 MTH of a list of leaf hashes. */
export function computeRoot(leafHashes: readonly Buffer[]): Buffer {
  const frontier = new MerkleFrontier();
  for (const leaf of leafHashes) frontier.append(leaf);
  return frontier.root();
}

function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** RFC 6962 §2.1.1 inclusion proof (audit path) of leaf `index` in the tree of `leafHashes`. */
export function createInclusionProof(leafHashes: readonly Buffer[], index: number): Buffer[] {
  if (!Number.isInteger(index) || index < 0 || index >= leafHashes.length) {
    throw new RangeError('index is outside the tree');
  }
  if (leafHashes.length === 1) return [];
  const k = largestPowerOfTwoBelow(leafHashes.length);
  if (index < k) {
    return [...createInclusionProof(leafHashes.slice(0, k), index), computeRoot(leafHashes.slice(k))];
  }
  return [...createInclusionProof(leafHashes.slice(k), index - k), computeRoot(leafHashes.slice(0, k))];
}

/** Verifies an inclusion proof (RFC 9162 §2.1.3.2 algorithm). */
export function verifyInclusionProof(
  leafHash: Buffer,
  index: number,
  size: number,
  proof: readonly Buffer[],
  root: Buffer,
): boolean {
  if (index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = hashChildren(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}

/** RFC 6962 §2.1.2 consistency proof between the first `oldSize` leaves and the whole tree. */
export function createConsistencyProof(leafHashes: readonly Buffer[], oldSize: number): Buffer[] {
  if (!Number.isInteger(oldSize) || oldSize < 1 || oldSize > leafHashes.length) {
    throw new RangeError('oldSize must be between 1 and the tree size');
  }
  return subproof(oldSize, leafHashes, true);
}

function subproof(m: number, leaves: readonly Buffer[], complete: boolean): Buffer[] {
  const n = leaves.length;
  if (m === n) return complete ? [] : [computeRoot(leaves)];
  const k = largestPowerOfTwoBelow(n);
  if (m <= k) return [...subproof(m, leaves.slice(0, k), complete), computeRoot(leaves.slice(k))];
  return [...subproof(m - k, leaves.slice(k), false), computeRoot(leaves.slice(0, k))];
}

/** Verifies a consistency proof (RFC 9162 §2.1.4.2 algorithm). */
export function verifyConsistencyProof(
  oldSize: number,
  newSize: number,
  proof: readonly Buffer[],
  oldRoot: Buffer,
  newRoot: Buffer,
): boolean {
  if (oldSize < 1 || oldSize > newSize) return false;
  if (oldSize === newSize) return proof.length === 0 && oldRoot.equals(newRoot);
  let path = [...proof];
  if (isPowerOfTwo(oldSize)) path = [oldRoot, ...path];
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  const [first, ...rest] = path;
  if (!first) return false;
  let fr = first;
  let sr = first;
  for (const c of rest) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && fr.equals(oldRoot) && sr.equals(newRoot);
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}
