// Inclusion and consistency proofs (RFC 6962 §2.1.1–2.1.2) over the audit log as stored: the leaves
// are the stored records in seq order, read once per proof, keeping only the nodes the proof needs.
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { sql } from 'kysely';
import { AppError } from '../../errors/app-error.ts';
import { isPostgres } from '../../store/advisory-lock.ts';
import type { SecurityDb } from '../security-tables.ts';
import {
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

// Rows read per statement. Each batch is hashed before the next is read, and the event loop gets a
// turn in between: better-sqlite3 answers synchronously, so one statement over the whole log (and
// its hashing, about a second at 200,000 records) would hold every other request that long.
const LEAF_BATCH = 2000;

/**
 * Proofs of one process computed or waiting at once (one computed at a time, the others in order);
 * more are refused with 429 RESOURCE_LIMIT_EXCEEDED. A proof reads and hashes the log from its first
 * record (about a second per 200,000), and any auditor of any tenant may ask for one: without a
 * bound, concurrent requests, each within its caller's rate limit, would each take that much CPU
 * (and, on PostgreSQL, database) time at once.
 */
export const MAX_PENDING_PROOFS = 4;

/** Runs proof computations one at a time, refusing one that finds MAX_PENDING_PROOFS pending. */
export function createProofQueue(maxPending = MAX_PENDING_PROOFS) {
  let tail: Promise<unknown> = Promise.resolve();
  let pending = 0;
  return async function inTurn<T>(compute: () => Promise<T>): Promise<T> {
    if (pending >= maxPending) {
      throw new AppError(
        'RESOURCE_LIMIT_EXCEEDED',
        `${pending} audit proofs are being computed or waiting on this server, the most it takes at once: try again shortly`,
      );
    }
    pending += 1;
    const result = tail.then(compute);
    tail = result.catch(() => undefined);
    try {
      return await result;
    } finally {
      pending -= 1;
    }
  };
}

/** The audit path of one record, and the tree head it leads to. */
export interface AuditInclusionProof {
  index: number;
  size: number;
  /** RFC 6962 leaf hash of the record at `index`: SHA-256(0x00 ‖ its canonical JSON). */
  leafHash: Buffer;
  /** Root of the first `size` records as stored now (what the proof leads to). */
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
): Promise<AuditInclusionProof> {
  const ranges = inclusionProofRanges(index, size);
  const { roots, leaf } = await computeRangeRoots(db, size, ranges, index);
  const rootHash = rootFromInclusionProof(leaf, index, size, roots);
  if (!rootHash) throw new Error('inclusion proof of the wrong length');
  return { index, size, leafHash: leaf, rootHash, proof: roots };
}

/** The consistency proof between the trees of the first `from` and the first `to` records. */
export async function readConsistencyProof(
  db: SecurityDb,
  from: number,
  to: number,
): Promise<AuditConsistencyProof> {
  const ranges = consistencyProofRanges(from, to);
  // The proof leaves the old root out when it is a node of the new tree (a power-of-two size, or the
  // same size); it is computed in the same pass, over leaves no other range covers.
  const oldRootAlone = from === to || isPowerOfTwo(from);
  const { roots } = await computeRangeRoots(
    db,
    to,
    oldRootAlone ? [...ranges, { start: 0, end: from }] : ranges,
    null,
  );
  const proof = oldRootAlone ? roots.slice(0, -1) : roots;
  const seed = oldRootAlone ? (roots[roots.length - 1] as Buffer) : EMPTY_ROOT;
  const heads = rootsFromConsistencyProof(from, to, proof, seed);
  if (!heads) throw new Error('consistency proof of the wrong length');
  return { from, to, fromRoot: heads.oldRoot, toRoot: heads.newRoot, proof };
}

/**
 * One pass over the first `size` leaves: the root of each of `ranges` (which must not overlap), in
 * their order, and the hash of leaf `leafIndex`.
 */
async function computeRangeRoots(
  db: SecurityDb,
  size: number,
  ranges: readonly LeafRange[],
  leafIndex: number | null,
): Promise<{ roots: Buffer[]; leaf: Buffer }> {
  const order = ranges.map((range, i) => ({ ...range, i })).sort((a, b) => a.start - b.start);
  const frontiers = ranges.map(() => new MerkleFrontier());
  let leaf: Buffer = EMPTY_ROOT;
  let next = 0;
  let position = 0;
  for await (const hash of readLeafHashes(db, size)) {
    while (next < order.length && (order[next] as LeafRange).end <= position) next += 1;
    const range = order[next];
    if (range && range.start <= position) (frontiers[range.i] as MerkleFrontier).append(hash);
    if (position === leafIndex) leaf = hash;
    position += 1;
  }
  if (position < size) {
    throw new AppError(
      'CONFLICT',
      `The audit log holds ${position} of the ${size} records with seq 0 to ${size - 1}: records are missing (run maos audit verify).`,
    );
  }
  return { roots: frontiers.map((frontier) => frontier.root()), leaf };
}

/**
 * The leaf hashes of the records below seq `size` in seq order (fewer when rows are missing: never
 * a record at or beyond `size` in place of a missing one, whatever was appended since). On
 * PostgreSQL the database hashes each record (32 bytes per row cross the wire instead of the record);
 * SQLite has no SHA-256, so the records are read and hashed here.
 */
async function* readLeafHashes(db: SecurityDb, size: number): AsyncGenerator<Buffer> {
  let read = 0;
  // From seq 0, as the checkpoint writer reads the log (audit-log.ts, computeTreeHead).
  let after = -1;
  while (read < size) {
    const limit = Math.min(LEAF_BATCH, size - read);
    const query = db
      .selectFrom('audit_log')
      .select('seq')
      .where('seq', '>', after)
      .where('seq', '<', size)
      .orderBy('seq', 'asc')
      .limit(limit);
    const rows = isPostgres(db)
      ? await query
          .select(sql<Buffer>`sha256(decode('00', 'hex') || convert_to(event, 'UTF8'))`.as('leaf'))
          .execute()
      : (await query.select('event').execute()).map((row) => ({
          seq: row.seq,
          leaf: hashLeafText(row.event),
        }));
    for (const row of rows) yield row.leaf;
    read += rows.length;
    const last = rows[rows.length - 1];
    if (rows.length < limit || !last) return;
    after = Number(last.seq);
    await yieldToEventLoop();
  }
}
