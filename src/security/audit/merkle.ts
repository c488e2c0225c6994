// RFC 6962 Merkle tree hashing over audit records: leaf SHA-256(0x00‖d), node SHA-256(0x01‖l‖r),
// empty tree SHA-256(""). Tree heads go into signed checkpoints; proofs let a client check a record.
import { createHash, hash } from 'node:crypto';

/** SHA-256 of a leaf's data with the RFC 6962 0x00 domain prefix. */
export function hashLeaf(data: Uint8Array): Buffer {
  return createHash('sha256').update(Uint8Array.of(0)).update(data).digest();
}

/**
 * `hashLeaf` of a text's UTF-8 bytes (a stored record), hashed in one call: a proof hashes every
 * record of the log, and this takes about two thirds of the time of a Buffer and a Hash object each.
 */
export function hashLeafText(text: string): Buffer {
  return hash('sha256', `\u0000${text}`, 'buffer');
}

// The 0x01 prefix and both children, written in place for each node: one-shot hashing of a reused
// buffer takes about a third of the time of a Hash object per node (a proof hashes a node per record).
const childrenInput = Buffer.alloc(65, 1);

/** SHA-256 of two child hashes with the RFC 6962 0x01 domain prefix. */
export function hashChildren(left: Uint8Array, right: Uint8Array): Buffer {
  if (left.length !== 32 || right.length !== 32) {
    return createHash('sha256').update(Uint8Array.of(1)).update(left).update(right).digest();
  }
  childrenInput.set(left, 1);
  childrenInput.set(right, 33);
  return hash('sha256', childrenInput, 'buffer');
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
    this.push(1, leafHash);
  }

  /**
   * Appends the root of a perfect subtree of `size` leaves in place of the leaves: the same tree as
   * appending them one by one. Only where such a subtree can start: `size` a power of two and the
   * leaves so far a multiple of it (RangeError otherwise).
   */
  appendSubtree(size: number, root: Buffer): void {
    if (!isPowerOfTwo(size) || this.count % size !== 0) {
      throw new RangeError(`a subtree of ${size} leaves cannot follow ${this.count}`);
    }
    this.push(size, root);
  }

  private push(size: number, hash: Buffer): void {
    let node = { size, hash };
    let top = this.stack[this.stack.length - 1];
    while (top && top.size === node.size) {
      this.stack.pop();
      node = { size: top.size * 2, hash: hashChildren(top.hash, node.hash) };
      top = this.stack[this.stack.length - 1];
    }
    this.stack.push(node);
    this.count += size;
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
      if (!isPowerOfTwo(size) || size >= previous || hash.length !== 32) return null;
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

/** Leaves `start` (inclusive) to `end` (exclusive): one node of a proof is the MTH of such a run. */
export interface LeafRange {
  start: number;
  end: number;
}

/**
 * The leaf ranges whose roots make the RFC 6962 §2.1.1 inclusion proof (audit path) of leaf `index`
 * in a tree of `size` leaves, in proof order (nearest the leaf first). They do not overlap and,
 * with the leaf, cover the tree, so a server can compute them all in one pass over the leaves.
 */
export function inclusionProofRanges(index: number, size: number): LeafRange[] {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) {
    throw new RangeError('index is outside the tree');
  }
  const ranges: LeafRange[] = [];
  let start = 0;
  let end = size;
  let m = index;
  // PATH(m, D[start:end]) unrolled from the root: the sibling nearest the root is found first.
  while (end - start > 1) {
    const k = largestPowerOfTwoBelow(end - start);
    if (m < k) {
      ranges.push({ start: start + k, end });
      end = start + k;
    } else {
      ranges.push({ start, end: start + k });
      start += k;
      m -= k;
    }
  }
  return ranges.reverse();
}

/**
 * The leaf ranges whose roots make the RFC 6962 §2.1.2 consistency proof between the first `from`
 * leaves and a tree of `to` leaves, in proof order; none overlaps another. Empty when the sizes
 * are equal.
 */
export function consistencyProofRanges(from: number, to: number): LeafRange[] {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 1 || from > to) {
    throw new RangeError('from must be between 1 and the tree size');
  }
  const ranges: LeafRange[] = [];
  let start = 0;
  let end = to;
  let m = from;
  let complete = true;
  // SUBPROOF(m, D[start:end], complete) unrolled from the root, as above.
  for (;;) {
    if (m === end - start) {
      if (!complete) ranges.push({ start, end });
      break;
    }
    const k = largestPowerOfTwoBelow(end - start);
    if (m <= k) {
      ranges.push({ start: start + k, end });
      end = start + k;
    } else {
      ranges.push({ start, end: start + k });
      start += k;
      m -= k;
      complete = false;
    }
  }
  return ranges.reverse();
}

/** RFC 6962 §2.1.1 inclusion proof (audit path) of leaf `index` in the tree of `leafHashes`. */
export function createInclusionProof(leafHashes: readonly Buffer[], index: number): Buffer[] {
  return inclusionProofRanges(index, leafHashes.length).map(({ start, end }) =>
    computeRoot(leafHashes.slice(start, end)),
  );
}

/** RFC 6962 §2.1.2 consistency proof between the first `oldSize` leaves and the whole tree. */
export function createConsistencyProof(leafHashes: readonly Buffer[], oldSize: number): Buffer[] {
  return consistencyProofRanges(oldSize, leafHashes.length).map(({ start, end }) =>
    computeRoot(leafHashes.slice(start, end)),
  );
}

/**
 * The root that an inclusion proof leads to from `leafHash` at `index` in a tree of `size` leaves
 * (RFC 9162 §2.1.3.2); null when the proof has the wrong length for that position.
 */
export function rootFromInclusionProof(
  leafHash: Buffer,
  index: number,
  size: number,
  proof: readonly Buffer[],
): Buffer | null {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return null;
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) return null;
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
  return sn === 0 ? r : null;
}

/** Verifies an inclusion proof (RFC 9162 §2.1.3.2 algorithm). */
export function verifyInclusionProof(
  leafHash: Buffer,
  index: number,
  size: number,
  proof: readonly Buffer[],
  root: Buffer,
): boolean {
  return rootFromInclusionProof(leafHash, index, size, proof)?.equals(root) === true;
}

/**
 * The two roots a consistency proof leads to (RFC 9162 §2.1.4.2): of the first `oldSize` leaves
 * and of all `newSize`. When `oldSize` is a power of two the proof leaves its root out (it is a
 * node of the new tree), so it must be given as `oldRoot`; otherwise `oldRoot` is not used. Null
 * when the proof has the wrong length for those sizes.
 */
export function rootsFromConsistencyProof(
  oldSize: number,
  newSize: number,
  proof: readonly Buffer[],
  oldRoot: Buffer,
): { oldRoot: Buffer; newRoot: Buffer } | null {
  if (!Number.isSafeInteger(oldSize) || !Number.isSafeInteger(newSize) || oldSize < 1 || oldSize > newSize) {
    return null;
  }
  if (oldSize === newSize) return proof.length === 0 ? { oldRoot, newRoot: oldRoot } : null;
  let path = [...proof];
  if (isPowerOfTwo(oldSize)) path = [oldRoot, ...path];
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  const [first, ...rest] = path;
  if (!first) return null;
  let fr = first;
  let sr = first;
  for (const c of rest) {
    if (sn === 0) return null;
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
  return sn === 0 ? { oldRoot: fr, newRoot: sr } : null;
}

/** Verifies a consistency proof (RFC 9162 §2.1.4.2 algorithm). */
export function verifyConsistencyProof(
  oldSize: number,
  newSize: number,
  proof: readonly Buffer[],
  oldRoot: Buffer,
  newRoot: Buffer,
): boolean {
  const roots = rootsFromConsistencyProof(oldSize, newSize, proof, oldRoot);
  if (!roots) return false;
  return roots.oldRoot.equals(oldRoot) && roots.newRoot.equals(newRoot);
}

/** Whether `n` is 1, 2, 4, …: computed on numbers, not with bitwise operators, which cut to 32 bits. */
export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}
