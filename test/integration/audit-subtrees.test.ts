// The stored block roots behind the audit proofs (security/audit/audit-subtrees.ts, audit-proof.ts),
// on SQLite and PostgreSQL (PostgreSQL needs --test-global-setup=test/fixtures/postgres-global-setup.ts):
// proofs are those of the whole log computed in memory, at and around the block boundaries, with no
// block stored yet and with all stored; once stored, a proof reads the records of at most two blocks;
// a first proof that fails part way has stored the blocks it finished, a batch at a time;
// two replicas storing the same block keep one row; the appends store none. After a record or a
// stored root was changed (SQLite, raw SQL), the proofs and `verify` show it.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { configSchema } from '../../src/config/schema.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { type AuditLog, createAuditLog } from '../../src/security/audit/audit-log.ts';
import {
  type ProofReadCounts,
  readAuditLogSize,
  readConsistencyProof,
  readInclusionProof,
  STORE_EVERY_BLOCKS,
} from '../../src/security/audit/audit-proof.ts';
import type { AuditEventInput } from '../../src/security/audit/audit-record.ts';
import { readDatabaseEntries } from '../../src/security/audit/audit-source.ts';
import {
  readAllSubtreeRoots,
  readSubtreeRoots,
  SUBTREE_LEAVES,
  storeSubtreeRoots,
} from '../../src/security/audit/audit-subtrees.ts';
import {
  generateSigningKeyPem,
  loadCheckpointSigner,
  openCheckpoint,
} from '../../src/security/audit/checkpoint.ts';
import {
  computeRoot,
  createConsistencyProof,
  createInclusionProof,
  hashLeaf,
  verifyInclusionProof,
} from '../../src/security/audit/merkle.ts';
import { verifyAuditEntries } from '../../src/security/audit/verify.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { createDatabase } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { storedLeaves } from '../fixtures/audit-records.ts';
import { STORE_BACKENDS, useStoreHandles } from '../fixtures/store-backends.ts';

const B = SUBTREE_LEAVES;
/** Four complete blocks and three records of a fifth. */
const SIZE = 4 * B + 3;
const signer = loadCheckpointSigner('maos.test/audit', generateSigningKeyPem());

function event(i: number): AuditEventInput {
  return {
    action: 'sessions:create',
    actor: {
      type: 'service',
      id: `key-${i}`,
      tenant: 'acme',
      ip: null,
      user_agent: 'naïve',
      auth_method: 'apikey',
    },
    target: { type: 'session', id: `s-${i}`, tenant: 'acme' },
    outcome: 'success',
  };
}

async function fill(log: AuditLog, size: number): Promise<void> {
  for (let i = 0; i < size; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, size - i) }, (_, j) => log.append(event(i + j))));
  }
}

async function storedRows(db: SecurityDb): Promise<{ first_seq: number; leaves: number; root: string }[]> {
  const rows = await db.selectFrom('audit_subtrees').selectAll().orderBy('first_seq').execute();
  return rows.map((row) => ({ ...row, first_seq: Number(row.first_seq), leaves: Number(row.leaves) }));
}

const clearStored = (db: SecurityDb) => db.deleteFrom('audit_subtrees').execute();

/** Sizes and positions at and around the block boundaries. */
const SIZES = [B - 1, B, B + 1, 2 * B - 1, 2 * B, 2 * B + 1, 3 * B, SIZE];
const near = (size: number) =>
  [
    ...new Set([0, 1, B - 2, B - 1, B, B + 1, 2 * B - 1, 2 * B, 2 * B + 1, 3 * B + 7, size - 2, size - 1]),
  ].filter((n) => n >= 0 && n < size);

for (const backend of STORE_BACKENDS) {
  describe(`stored block roots behind the audit proofs (${backend.name})`, { timeout: 180_000 }, () => {
    let db: SecurityDb;
    let log: AuditLog | undefined;
    let leaves: Buffer[];
    // Registered first, so it runs before the handles close (its closing checkpoint writes).
    after(() => log?.close());
    const store = useStoreHandles(backend, 2);
    before(async () => {
      db = store.handles[0]?.db as unknown as SecurityDb;
      const opened = createAuditLog({ db, origin: 'maos.test/audit', signer });
      log = opened;
      await fill(opened, SIZE);
      assert.ok(await opened.writeCheckpoint());
      leaves = await storedLeaves(db);
      assert.equal(leaves.length, SIZE);
    });

    test('appending records and signing checkpoints store no block root', async () => {
      assert.deepEqual(await storedRows(db), []);
      await (log as AuditLog).inclusionProof(3, SIZE);
      const rows = await storedRows(db);
      assert.equal(rows.length, 4);
      await fill(log as AuditLog, B + 1);
      await (log as AuditLog).writeCheckpoint();
      assert.deepEqual(await storedRows(db), rows);
    });

    // The expected proofs and roots, computed from `leaves` (which the tests below do not change)
    // once each: both runs of everyProof compare with the same ones.
    const expected = new Map<string, Buffer | Buffer[]>();
    const once = <T extends Buffer | Buffer[]>(key: string, compute: () => T): T => {
      if (!expected.has(key)) expected.set(key, compute());
      return expected.get(key) as T;
    };
    const rootOf = (size: number) => once(`root ${size}`, () => computeRoot(leaves.slice(0, size)));

    const everyProof = async (check: (counts: ProofReadCounts, what: string) => void, fresh: boolean) => {
      for (const size of SIZES) {
        const tree = leaves.slice(0, size);
        for (const index of near(size)) {
          if (fresh) await clearStored(db);
          const counts: ProofReadCounts = { records: 0, storedRoots: 0, rootsStored: 0 };
          const proof = await readInclusionProof(db, index, size, counts);
          const what = `${index} in ${size}`;
          assert.deepEqual(
            proof.proof,
            once(`inclusion ${index} ${size}`, () => createInclusionProof(tree, index)),
            what,
          );
          assert.deepEqual(proof.leafHash, leaves[index], what);
          assert.deepEqual(proof.rootHash, rootOf(size), what);
          check(counts, what);
        }
        for (const from of near(size + 1).filter((n) => n >= 1)) {
          if (fresh) await clearStored(db);
          const counts: ProofReadCounts = { records: 0, storedRoots: 0, rootsStored: 0 };
          const proof = await readConsistencyProof(db, from, size, counts);
          const what = `${from} → ${size}`;
          assert.deepEqual(
            proof.proof,
            once(`consistency ${from} ${size}`, () => createConsistencyProof(tree, from)),
            what,
          );
          assert.deepEqual([proof.fromRoot, proof.toRoot], [rootOf(from), rootOf(size)]);
          check(counts, what);
        }
      }
    };

    test('with no block stored, each proof is the one computed from all the leaves, and stores its blocks', async () => {
      await everyProof((counts, what) => {
        assert.equal(counts.storedRoots, 0, what);
        assert.ok(counts.records <= SIZE, what);
      }, true);
      // The last one (SIZE → SIZE) needed every complete block.
      assert.deepEqual(
        (await storedRows(db)).map((row) => [row.first_seq, row.leaves, row.root]),
        [0, 1, 2, 3].map((block) => [
          block * B,
          B,
          computeRoot(leaves.slice(block * B, (block + 1) * B)).toString('base64'),
        ]),
      );
    });

    test('with every block stored, the same proofs read the records of at most two blocks', async () => {
      await readConsistencyProof(db, 1, SIZE);
      assert.equal((await storedRows(db)).length, 4);
      await everyProof((counts, what) => {
        assert.equal(counts.rootsStored, 0, what);
        assert.ok(counts.records <= 2 * B, `${what}: ${counts.records} records read`);
      }, false);
      // The three records of the last block and four block roots, not 4,099 records.
      const counts: ProofReadCounts = { records: 0, storedRoots: 0, rootsStored: 0 };
      await readInclusionProof(db, SIZE - 1, SIZE, counts);
      assert.deepEqual(counts, { records: 3, storedRoots: 4, rootsStored: 0 });
    });

    test('two replicas computing the same blocks at once both answer, and one row per block is kept', async () => {
      const other = store.handles[1]?.db as unknown as SecurityDb;
      await clearStored(db);
      const proofs = await Promise.all([
        readInclusionProof(db, 5, SIZE),
        readInclusionProof(other, 5, SIZE),
        readConsistencyProof(other, 3, SIZE),
        readConsistencyProof(db, 3, SIZE),
      ]);
      assert.deepEqual(proofs[0], proofs[1]);
      assert.deepEqual(proofs[2], proofs[3]);
      const rows = await storedRows(db);
      assert.deepEqual(
        rows.map((row) => row.first_seq),
        [0, B, 2 * B, 3 * B],
      );
      // Storing a block stored already is no conflict; the row stays as it was.
      const block2 = computeRoot(leaves.slice(2 * B, 3 * B));
      await storeSubtreeRoots(other, new Map([[2, block2]]));
      await storeSubtreeRoots(db, new Map([[2, Buffer.alloc(32)]]));
      assert.deepEqual(await storedRows(db), rows);
      assert.deepEqual((await readSubtreeRoots(other, SIZE)).get(2), block2);
    });

    test('the stored roots a proof reads are those of the complete blocks below its size, in one range', async () => {
      await readConsistencyProof(db, 1, SIZE);
      const roots = await readSubtreeRoots(db, SIZE);
      assert.deepEqual([...roots.keys()], [0, 1, 2, 3]);
      for (const [block, root] of roots)
        assert.deepEqual(root, computeRoot(leaves.slice(block * B, (block + 1) * B)));
      for (const [size, blocks] of [
        [0, []],
        [B - 1, []],
        [B, [0]],
        [3 * B - 1, [0, 1]],
        [3 * B, [0, 1, 2]],
        [3 * B + 1, [0, 1, 2]],
      ] as const) {
        assert.deepEqual([...(await readSubtreeRoots(db, size)).keys()], blocks, `size ${size}`);
      }
      // A row whose first record does not start a block is no block's root: not read, not counted.
      await db
        .insertInto('audit_subtrees')
        .values({ first_seq: 5, leaves: B, root: roots.get(0)?.toString('base64') as string })
        .execute();
      try {
        assert.deepEqual([...(await readSubtreeRoots(db, SIZE)).keys()], [0, 1, 2, 3]);
        const counts: ProofReadCounts = { records: 0, storedRoots: 0, rootsStored: 0 };
        const proof = await readInclusionProof(db, 7, SIZE, counts);
        assert.deepEqual(proof.proof, createInclusionProof(leaves, 7));
        assert.deepEqual(counts, { records: B + 3, storedRoots: 4, rootsStored: 0 });
      } finally {
        await db.deleteFrom('audit_subtrees').where('first_seq', '=', 5).execute();
      }
    });

    test('a first proof that fails part way has stored the roots of the blocks it finished, a batch at a time', async () => {
      // Twenty complete blocks, and a proof over 22: it fails at block 20 (no records), after storing
      // a batch; nothing would be kept if the roots were stored only at the end.
      const blocks = 20;
      await fill(log as AuditLog, blocks * B - (await readAuditLogSize(db)));
      const all = await storedLeaves(db);
      assert.equal(all.length, blocks * B);
      const blockRoot = (block: number) =>
        computeRoot(all.slice(block * B, (block + 1) * B)).toString('base64');
      await clearStored(db);
      const counts: ProofReadCounts = { records: 0, storedRoots: 0, rootsStored: 0 };
      await assert.rejects(readInclusionProof(db, 0, (blocks + 2) * B, counts), (error: unknown) => {
        assert.ok(error instanceof AppError && error.code === 'CONFLICT', String(error));
        assert.match(
          error.message,
          /holds 0 of the 1024 records with seq 20480 to 21503: records are missing/,
        );
        return true;
      });
      const kept = Array.from({ length: STORE_EVERY_BLOCKS }, (_, block) => block);
      assert.deepEqual(counts, { records: blocks * B, storedRoots: 0, rootsStored: kept.length });
      assert.deepEqual(
        (await storedRows(db)).map((row) => [row.first_seq, row.leaves, row.root]),
        kept.map((block) => [block * B, B, blockRoot(block)]),
      );
      // The next proof reads the records of the other blocks only, and stores them.
      const next: ProofReadCounts = { records: 0, storedRoots: 0, rootsStored: 0 };
      const proof = await readInclusionProof(db, blocks * B - 1, blocks * B, next);
      assert.deepEqual(proof.rootHash, computeRoot(all));
      assert.deepEqual(next, {
        records: (blocks - kept.length) * B,
        storedRoots: kept.length,
        rootsStored: blocks - kept.length,
      });
      await clearStored(db);
    });
  });
}

const sqliteConfig = (dataDir: string) => configSchema.parse({ dataDir, store: { synchronous: 'normal' } });

describe('stored block roots after raw SQL edits (SQLite)', { timeout: 120_000 }, () => {
  // A log of SIZE records, signed, with every block stored: written once, and each test edits a
  // copy of that database file of its own.
  let templateDir = '';
  let signedNote = '';
  before(async () => {
    templateDir = mkdtempSync(join(tmpdir(), 'maos-audit-subtrees-'));
    const handle = createDatabase(sqliteConfig(templateDir));
    try {
      await migrateToLatest(handle.db);
      const db = handle.db as unknown as SecurityDb;
      const log = createAuditLog({ db, origin: 'maos.test/audit', signer });
      await fill(log, SIZE);
      const written = await log.writeCheckpoint();
      assert.ok(written);
      signedNote = written.note;
      await log.consistencyProof(1, SIZE);
      assert.equal((await storedRows(db)).length, 4);
      await log.close();
    } finally {
      await handle.close();
    }
  });
  after(() => rmSync(templateDir, { recursive: true, force: true }));

  async function signedLog() {
    const dir = mkdtempSync(join(tmpdir(), 'maos-audit-subtrees-'));
    copyFileSync(join(templateDir, 'maos.db'), join(dir, 'maos.db'));
    const handle = createDatabase(sqliteConfig(dir));
    await migrateToLatest(handle.db);
    const db = handle.db as unknown as SecurityDb;
    const log = createAuditLog({ db, origin: 'maos.test/audit', signer });
    assert.equal((await storedRows(db)).length, 4);
    return {
      db,
      log,
      signed: openCheckpoint(signedNote, signer),
      verify: async () =>
        verifyAuditEntries(readDatabaseEntries(db), { subtreeRoots: await readAllSubtreeRoots(db) }),
      async dispose() {
        await log.close();
        await handle.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const refusedAs = (pattern: RegExp) => (error: unknown) => {
    assert.ok(error instanceof AppError && error.code === 'CONFLICT', String(error));
    assert.match(error.message, pattern);
    return true;
  };

  test('a record changed after its block was stored: its proof is refused, verify names it', async () => {
    const t = await signedLog();
    try {
      await sql`DROP TRIGGER audit_log_no_update`.execute(t.db);
      await sql`UPDATE audit_log SET event = replace(event, 'key-', 'key-X') WHERE seq = ${B + 5}`.execute(
        t.db,
      );
      await assert.rejects(
        t.log.inclusionProof(B + 5, SIZE),
        refusedAs(/stored hash of the audit records with seq 1024 to 2047 does not match them/),
      );
      // A record of another block: its path takes the stored root, which is what was signed.
      const proof = await t.log.inclusionProof(5, SIZE);
      assert.ok(verifyInclusionProof(proof.leafHash, 5, SIZE, proof.proof, t.signed.root));
      const report = await t.verify();
      assert.equal(report.ok, false);
      assert.equal(report.firstBrokenIndex, B + 5);
      assert.ok(
        report.problems.includes(
          'the hash of records 1024..2047 stored for proofs (audit_subtrees) does not match them: stored before a record in it was changed',
        ),
        report.problems.join('\n'),
      );
    } finally {
      await t.dispose();
    }
  });

  test('records changed in two stored blocks: verify says of each block that a record in it was changed', async () => {
    const t = await signedLog();
    try {
      await sql`DROP TRIGGER audit_log_no_update`.execute(t.db);
      for (const seq of [5, B + 5]) {
        await sql`UPDATE audit_log SET event = replace(event, 'key-', 'key-X') WHERE seq = ${seq}`.execute(
          t.db,
        );
      }
      const report = await t.verify();
      assert.deepEqual([report.ok, report.firstBrokenIndex], [false, 5]);
      for (const [first, last] of [
        [0, B - 1],
        [B, 2 * B - 1],
      ]) {
        assert.ok(
          report.problems.includes(
            `the hash of records ${first}..${last} stored for proofs (audit_subtrees) does not match them: stored before a record in it was changed`,
          ),
          report.problems.join('\n'),
        );
      }
    } finally {
      await t.dispose();
    }
  });

  test('a stored root changed: proofs over it fail against the signed root, verify names it; deleted, it is computed again', async () => {
    const t = await signedLog();
    try {
      assert.equal((await t.verify()).ok, true);
      const other = computeRoot([hashLeaf(Buffer.from('forged'))]).toString('base64');
      await sql`UPDATE audit_subtrees SET root = ${other} WHERE first_seq = ${2 * B}`.execute(t.db);
      const over = await t.log.inclusionProof(5, SIZE);
      assert.ok(!verifyInclusionProof(over.leafHash, 5, SIZE, over.proof, t.signed.root));
      await assert.rejects(
        t.log.inclusionProof(2 * B + 1, SIZE),
        refusedAs(/stored hash of the audit records with seq 2048 to 3071 does not match them/),
      );
      const report = await t.verify();
      assert.deepEqual([report.ok, report.firstBrokenIndex], [false, 2 * B]);
      assert.match(
        report.problems[0] ?? '',
        /records 2048\.\.3071 .* does not match them: the stored hash was changed/,
      );
      // Not a hash at all: as if none were stored (computed from the records, the row left alone).
      await sql`UPDATE audit_subtrees SET root = 'garbage' WHERE first_seq = ${2 * B}`.execute(t.db);
      const again = await t.log.inclusionProof(5, SIZE);
      assert.ok(verifyInclusionProof(again.leafHash, 5, SIZE, again.proof, t.signed.root));
      await clearStored(t.db);
      const fresh = await t.log.inclusionProof(5, SIZE);
      assert.ok(verifyInclusionProof(fresh.leafHash, 5, SIZE, fresh.proof, t.signed.root));
      assert.equal((await t.verify()).ok, true);
    } finally {
      await t.dispose();
    }
  });

  test('a record deleted from a stored block, and the log cut below one, show in verify', async () => {
    const t = await signedLog();
    try {
      await sql`DROP TRIGGER audit_log_no_delete`.execute(t.db);
      await sql`DELETE FROM audit_log WHERE seq = ${B + 5}`.execute(t.db);
      await sql`DELETE FROM audit_log WHERE seq >= ${3 * B + 10}`.execute(t.db);
      await assert.rejects(
        t.log.inclusionProof(B + 6, 3 * B),
        refusedAs(/holds 1023 of the 1024 records with seq 1024 to 2047: records are missing/),
      );
      const report = await t.verify();
      assert.deepEqual([report.ok, report.firstBrokenIndex], [false, B + 5]);
      // The gap is one finding: the blocks after it are still compared by seq, and match.
      assert.deepEqual(report.problems, [
        `position ${B + 5} holds seq ${B + 6} (record inserted, deleted or reordered)`,
        `record at ${B + 5} does not link to the record before it (chain broken)`,
        `a hash of records 3072..4095 is stored for proofs, but the log ends at ${3 * B + 10} records (records removed, or the hash row added)`,
      ]);
    } finally {
      await t.dispose();
    }
  });
});
