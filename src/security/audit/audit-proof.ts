// Inclusion and consistency proofs (RFC 6962 §2.1.1–2.1.2) over the audit log as stored: the
// roots of complete blocks of records come from `audit_subtrees` (audit-subtrees.ts), stored the
// first time a proof needs them; only the records of the blocks around the proved positions are read.
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { sql } from 'kysely';
import { AppError } from '../../errors/app-error.ts';
import { isPostgres } from '../../store/advisory-lock.ts';
import type { SecurityDb } from '../security-tables.ts';
import { readSubtreeRoots, SUBTREE_LEAVES, storeSubtreeRoots } from './audit-subtrees.ts';
import {
  computeRoot,
  consistencyProofRanges,
  EMPTY_ROOT,
  hashLeafText,
  inclusionProofRanges,
  isPowerOfTwo,
  type LeafRange,
  MerkleFrontier,
  rootFromInclusionProof,
  rootsFromConsistencyProof,
} from './merkle.ts';

/**
 * Proofs of one process computed or waiting at once (one computed at a time, the others in order);
 * more are refused with 429 RESOURCE_LIMIT_EXCEEDED. A proof over blocks not stored yet reads and
 * hashes their records (the first one after a start of a large log: about a second per 200,000),
 * and any auditor of any tenant may ask for one: without a bound, concurrent requests, each within
 * its caller's rate limit, would each take that much CPU (and database) time at once.
 */
export const MAX_PENDING_PROOFS = 4;

/**
 * Proofs of one tenant computed or waiting at once: its auditors cannot hold the places of the
 * others (and one auditor checks one proof after another anyway).
 */
export const MAX_PENDING_PROOFS_PER_TENANT = 1;

/**
 * Retry-After of a proof refused by either cap. A place frees when a proof ahead is answered: in
 * milliseconds once its blocks' roots are stored, seconds for the first over a large log; the
 * server cannot tell which, and a poll a second is cheap for it (a refusal costs no proof).
 */
export const PROOF_QUEUE_RETRY_AFTER_SECONDS = 1;

/** Who asked for a proof: the caller's tenant id (every HTTP caller has one); null ones share a place. */
export type ProofRequester = string | null;

/**
 * Runs proof computations one at a time, refusing one that finds MAX_PENDING_PROOFS pending, or
 * MAX_PENDING_PROOFS_PER_TENANT of its requester's (with PROOF_QUEUE_RETRY_AFTER_SECONDS).
 */
export function createProofQueue(
  maxPending = MAX_PENDING_PROOFS,
  maxPerTenant = MAX_PENDING_PROOFS_PER_TENANT,
) {
  let tail: Promise<unknown> = Promise.resolve();
  let pending = 0;
  const pendingOf = new Map<ProofRequester, number>();
  return async function inTurn<T>(requester: ProofRequester, compute: () => Promise<T>): Promise<T> {
    const own = pendingOf.get(requester) ?? 0;
    if (own >= maxPerTenant) {
      throw new AppError(
        'RESOURCE_LIMIT_EXCEEDED',
        `Your tenant has ${own === 1 ? 'an audit proof' : `${own} audit proofs`} being computed or waiting on this server, the most one tenant may: ask for the next one when it is answered`,
        { retryAfterSeconds: PROOF_QUEUE_RETRY_AFTER_SECONDS },
      );
    }
    if (pending >= maxPending) {
      throw new AppError(
        'RESOURCE_LIMIT_EXCEEDED',
        `${pending} audit proofs are being computed or waiting on this server, the most it takes at once: try again shortly`,
        { retryAfterSeconds: PROOF_QUEUE_RETRY_AFTER_SECONDS },
      );
    }
    pending += 1;
    pendingOf.set(requester, own + 1);
    const result = tail.then(compute);
    tail = result.catch(() => undefined);
    try {
      return await result;
    } finally {
      pending -= 1;
      const left = (pendingOf.get(requester) ?? 1) - 1;
      if (left > 0) pendingOf.set(requester, left);
      else pendingOf.delete(requester);
    }
  };
}

/**
 * Block roots a proof computed are stored this many at a time as it goes (16,384 records, about a
 * tenth of a second of reading and hashing), the rest when it is done: a first proof over a large log
 * that stops part way (records missing further on, the server stopping) keeps nearly all it computed.
 * One insert per block would be a commit per 1,024 records: a sixth or more of the time of such a
 * proof on PostgreSQL.
 */
export const STORE_EVERY_BLOCKS = 16;

/** What a proof read, for benchmarks and tests (each field is added to). */
export interface ProofReadCounts {
  /** Audit records read (hashed here, or by PostgreSQL). */
  records: number;
  /** Stored block roots read (audit_subtrees rows). */
  storedRoots: number;
  /** Block roots computed from their records and stored. */
  rootsStored: number;
}

/** The audit path of one record, and the tree head it leads to. */
export interface AuditInclusionProof {
  index: number;
  size: number;
  /** RFC 6962 leaf hash of the record at `index`: SHA-256(0x00 ‖ its canonical JSON). */
  leafHash: Buffer;
  /** Root of the first `size` records as computed now, from stored block roots and records (what the proof leads to). */
  rootHash: Buffer;
  proof: Buffer[];
}

/** The proof that the first `from` records are the start of the first `to`, and both tree heads. */
export interface AuditConsistencyProof {
  from: number;
  to: number;
  fromRoot: Buffer;
  toRoot: Buffer;
  proof: Buffer[];
}

/** Records in the log: the last seq plus one (seq starts at 0 and has no gaps in an intact log). */
export async function readAuditLogSize(db: SecurityDb): Promise<number> {
  const head = await db
    .selectFrom('audit_log')
    .select('seq')
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  return head ? Number(head.seq) + 1 : 0;
}

/** The inclusion proof of the record at position `index` in the tree of the first `size` records. */
export async function readInclusionProof(
  db: SecurityDb,
  index: number,
  size: number,
  counts?: ProofReadCounts,
): Promise<AuditInclusionProof> {
  const ranges = inclusionProofRanges(index, size);
  const { roots, leaf } = await computeRangeRoots(db, size, ranges, index, counts);
  const rootHash = rootFromInclusionProof(leaf, index, size, roots);
  if (!rootHash) throw new Error('inclusion proof of the wrong length');
  return { index, size, leafHash: leaf, rootHash, proof: roots };
}

/** The consistency proof between the trees of the first `from` and the first `to` records. */
export async function readConsistencyProof(
  db: SecurityDb,
  from: number,
  to: number,
  counts?: ProofReadCounts,
): Promise<AuditConsistencyProof> {
  const ranges = consistencyProofRanges(from, to);
  // The proof leaves the old root out when it is a node of the new tree (a power-of-two size, or the
  // same size); it is computed with the others.
  const oldRootAlone = from === to || isPowerOfTwo(from);
  const { roots } = await computeRangeRoots(
    db,
    to,
    oldRootAlone ? [...ranges, { start: 0, end: from }] : ranges,
    null,
    counts,
  );
  const proof = oldRootAlone ? roots.slice(0, -1) : roots;
  const seed = oldRootAlone ? (roots[roots.length - 1] as Buffer) : EMPTY_ROOT;
  const heads = rootsFromConsistencyProof(from, to, proof, seed);
  if (!heads) throw new Error('consistency proof of the wrong length');
  return { from, to, fromRoot: heads.oldRoot, toRoot: heads.newRoot, proof };
}

/**
 * The root of each of `ranges` (nodes of the tree of the first `size` leaves), in their order, and
 * the hash of leaf `leafIndex`. A range of a block or more starts on a block boundary (every node
 * starts at a multiple of its size rounded up to a power of two): its complete blocks come from
 * their stored roots, or are computed from their records and stored; the leaves of any other range
 * lie within one block, and those blocks are read whole (and compared with their stored roots). So
 * a proof reads one stored root per 1,024 records and the records of at most two blocks: the one
 * around the proved position, and the last, incomplete one.
 */
async function computeRangeRoots(
  db: SecurityDb,
  size: number,
  ranges: readonly LeafRange[],
  leafIndex: number | null,
  counts?: ProofReadCounts,
): Promise<{ roots: Buffer[]; leaf: Buffer }> {
  const B = SUBTREE_LEAVES;
  const usesBlocks = (range: LeafRange) => range.end - range.start >= B && range.start % B === 0;
  const rootBlocks = new Set<number>();
  const leafBlocks = new Set<number>();
  for (const range of ranges) {
    let leavesFrom = range.start;
    if (usesBlocks(range)) {
      leavesFrom = Math.floor(range.end / B) * B;
      for (let block = range.start / B; block < leavesFrom / B; block++) rootBlocks.add(block);
    }
    for (let block = Math.floor(leavesFrom / B); block * B < range.end; block++) leafBlocks.add(block);
  }
  if (leafIndex !== null) leafBlocks.add(Math.floor(leafIndex / B));
  const complete = (block: number) => (block + 1) * B <= size;

  // The ranges and the proved leaf cover the first `size` records: every complete block is needed.
  const stored = await readSubtreeRoots(db, size);
  if (counts) counts.storedRoots += stored.size;
  const blockRoots = new Map(stored);
  const blockLeaves = new Map<number, Buffer[]>();
  const computed = new Map<number, Buffer>();
  const storeComputed = async () => {
    if (computed.size === 0) return;
    await storeSubtreeRoots(db, computed);
    if (counts) counts.rootsStored += computed.size;
    computed.clear();
  };
  const toRead = [...new Set([...leafBlocks, ...[...rootBlocks].filter((block) => !stored.has(block))])];
  for (const block of toRead.sort((a, b) => a - b)) {
    const first = block * B;
    const end = Math.min(first + B, size);
    const leaves = await readLeafHashes(db, first, end);
    if (counts) counts.records += leaves.length;
    if (leaves.length < end - first) {
      throw new AppError(
        'CONFLICT',
        `The audit log holds ${leaves.length} of the ${end - first} records with seq ${first} to ${end - 1}: records are missing (run maos audit verify).`,
      );
    }
    if (leafBlocks.has(block)) blockLeaves.set(block, leaves);
    if (complete(block)) {
      const root = computeRoot(leaves);
      const kept = stored.get(block);
      if (kept && !kept.equals(root)) {
        throw new AppError(
          'CONFLICT',
          `The stored hash of the audit records with seq ${first} to ${end - 1} does not match them: one of those records, or the stored hash, was changed after the hash was stored (run maos audit verify).`,
        );
      }
      if (!kept) computed.set(block, root);
      blockRoots.set(block, root);
    }
    if (computed.size >= STORE_EVERY_BLOCKS) await storeComputed();
    await yieldToEventLoop();
  }
  await storeComputed();

  const leafAt = (index: number) => (blockLeaves.get(Math.floor(index / B)) as Buffer[])[index % B] as Buffer;
  const roots = ranges.map((range) => {
    const frontier = new MerkleFrontier();
    let leavesFrom = range.start;
    if (usesBlocks(range)) {
      leavesFrom = Math.floor(range.end / B) * B;
      for (let block = range.start / B; block < leavesFrom / B; block++) {
        frontier.appendSubtree(B, blockRoots.get(block) as Buffer);
      }
    }
    for (let index = leavesFrom; index < range.end; index++) frontier.append(leafAt(index));
    return frontier.root();
  });
  return { roots, leaf: leafIndex === null ? EMPTY_ROOT : leafAt(leafIndex) };
}

/**
 * The leaf hashes of the records with seq `first` to `end - 1` in seq order (fewer when rows are
 * missing). On PostgreSQL the database hashes each record (32 bytes per row cross the wire instead
 * of the record); SQLite has no SHA-256, so the records are read and hashed here.
 */
async function readLeafHashes(db: SecurityDb, first: number, end: number): Promise<Buffer[]> {
  const query = db
    .selectFrom('audit_log')
    .where('seq', '>=', first)
    .where('seq', '<', end)
    .orderBy('seq', 'asc');
  if (isPostgres(db)) {
    const rows = await query
      .select(sql<Buffer>`sha256(decode('00', 'hex') || convert_to(event, 'UTF8'))`.as('leaf'))
      .execute();
    return rows.map((row) => row.leaf);
  }
  return (await query.select('event').execute()).map((row) => hashLeafText(row.event));
}
