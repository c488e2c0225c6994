// Stored roots of complete, aligned blocks of SUBTREE_LEAVES audit records (`audit_subtrees`,
// migration 0025): a proof takes a block's root from here instead of reading and hashing its records.
// A row is written when a proof first needs its block (audit-proof.ts), never by the appends.
import type { SecurityDb } from '../security-tables.ts';

/**
 * Records per stored block (a power of two, so every aligned block is a node of every larger tree).
 * A proof over n records reads about n / 1,024 stored roots (32 bytes each) plus the records of at
 * most two blocks (the one holding the proved record, and the last, incomplete one): at 1,024 both
 * parts are equal near a million records (about 1,000 rows and 2,000 records instead of 1,000,000),
 * and still small at a hundred million (100,000 hashes, 3 MB). A block costs a row of 32 bytes per
 * about 450 KB of records. Changing this value leaves the stored rows of the old size unused.
 */
export const SUBTREE_LEAVES = 1024;

// Rows per statement: under SQLite's bound-parameter limit with three columns per row.
const ROWS_PER_STATEMENT = 500;

/**
 * The stored roots of the complete blocks of the first `size` records, by block (block b holds the
 * records from seq b·SUBTREE_LEAVES on): every proof over `size` records needs each of them, its
 * own root or the records behind it. One range of the primary key, about size / SUBTREE_LEAVES rows.
 */
export async function readSubtreeRoots(db: SecurityDb, size: number): Promise<Map<number, Buffer>> {
  const rows = await db
    .selectFrom('audit_subtrees')
    .select(['first_seq', 'root'])
    .where('leaves', '=', SUBTREE_LEAVES)
    .where('first_seq', '<', Math.floor(size / SUBTREE_LEAVES) * SUBTREE_LEAVES)
    .orderBy('first_seq')
    .execute();
  const roots = new Map<number, Buffer>();
  for (const row of rows) {
    const first = Number(row.first_seq);
    const root = Buffer.from(row.root, 'base64');
    // Not a block's first record (no proof reads it), or not a SHA-256 hash (the block is computed
    // from its records again; verify reports it): no root at all.
    if (first % SUBTREE_LEAVES === 0 && root.length === 32) roots.set(first / SUBTREE_LEAVES, root);
  }
  return roots;
}

/**
 * Stores the roots of blocks computed from their records. A block stored already (by another proof
 * or replica, from the same records) is left as it is: insert-or-ignore, never a conflict.
 */
export async function storeSubtreeRoots(db: SecurityDb, roots: ReadonlyMap<number, Buffer>): Promise<void> {
  const rows = [...roots].map(([block, root]) => ({
    first_seq: block * SUBTREE_LEAVES,
    leaves: SUBTREE_LEAVES,
    root: root.toString('base64'),
  }));
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
    await db
      .insertInto('audit_subtrees')
      .values(rows.slice(i, i + ROWS_PER_STATEMENT))
      .onConflict((conflict) => conflict.columns(['first_seq', 'leaves']).doNothing())
      .execute();
  }
}

/**
 * Every stored block root, by the seq of the block's first record (for `maos audit verify`); none in
 * a database from before migration 0025 (verify reads a database as it finds it).
 */
export async function readAllSubtreeRoots(db: SecurityDb): Promise<Map<number, Buffer>> {
  try {
    const rows = await db
      .selectFrom('audit_subtrees')
      .select(['first_seq', 'root'])
      .where('leaves', '=', SUBTREE_LEAVES)
      .orderBy('first_seq')
      .execute();
    return new Map(rows.map((row) => [Number(row.first_seq), Buffer.from(row.root, 'base64')]));
  } catch (error) {
    if (isMissingTable(error)) return new Map();
    throw error;
  }
}

function isMissingTable(error: unknown): boolean {
  const { code, message } = error as { code?: unknown; message?: unknown };
  // PostgreSQL undefined_table; SQLite has one code for every statement error, so its message.
  return code === '42P01' || (code === 'SQLITE_ERROR' && /no such table/.test(String(message)));
}
