// RFC 6962 proofs over the stored audit log (security/audit/audit-proof.ts), on SQLite and PostgreSQL
// (PostgreSQL needs --test-global-setup=test/fixtures/postgres-global-setup.ts): every inclusion and
// consistency proof of a small log verifies against the roots its signed checkpoints hold, with the
// leaves PostgreSQL hashes equal to those hashed here; after a raw SQL edit, a deleted record or a cut
// tail (SQLite, triggers dropped) the proofs, or the roots served with them, no longer match what
// was signed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { AppError } from '../../src/errors/app-error.ts';
import { type AuditLog, createAuditLog } from '../../src/security/audit/audit-log.ts';
import type { AuditEventInput } from '../../src/security/audit/audit-record.ts';
import {
  type Checkpoint,
  generateSigningKeyPem,
  loadCheckpointSigner,
  openCheckpoint,
} from '../../src/security/audit/checkpoint.ts';
import {
  computeRoot,
  verifyConsistencyProof,
  verifyInclusionProof,
} from '../../src/security/audit/merkle.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { storedLeaves } from '../fixtures/audit-records.ts';
import { STORE_BACKENDS, type StoreBackend } from '../fixtures/store-backends.ts';

const signer = loadCheckpointSigner('maos.test/audit', generateSigningKeyPem());
const SIZE = 13;

function event(i: number): AuditEventInput {
  const tenant = i % 3 === 2 ? 'other' : 'acme';
  return {
    action: 'sessions:create',
    // Text beyond ASCII (and a NUL, escaped in the record): PostgreSQL must hash the same bytes.
    actor: {
      type: 'service',
      id: `key-${i}`,
      tenant,
      ip: null,
      user_agent: 'curl/8 – naïve 😀',
      auth_method: 'apikey',
    },
    target: { type: 'session', id: `s-${i}`, tenant },
    outcome: 'success',
    reason: i === 4 ? 'nul \u0000 here' : null,
  };
}

interface SignedLog {
  db: SecurityDb;
  log: AuditLog;
  /** The checkpoint signed at each size 1..SIZE. */
  signed: Map<number, Checkpoint>;
  dispose(): Promise<void>;
}

/** A log of SIZE records with a checkpoint signed after each one. */
async function createSignedLog(backend: StoreBackend): Promise<SignedLog> {
  const opened = await backend.open(1);
  const db = opened.handles[0]?.db as unknown as SecurityDb;
  const log = createAuditLog({ db, origin: 'maos.test/audit', signer });
  const signed = new Map<number, Checkpoint>();
  for (let i = 0; i < SIZE; i++) {
    await log.append(event(i));
    const written = await log.writeCheckpoint();
    assert.ok(written);
    signed.set(written.size, openCheckpoint(written.note, signer));
  }
  return {
    db,
    log,
    signed,
    async dispose() {
      await log.close();
      await opened.dispose();
    },
  };
}

const rootAt = (log: SignedLog, size: number) => (log.signed.get(size) as Checkpoint).root;

for (const backend of STORE_BACKENDS) {
  describe(`audit proofs over the stored log (${backend.name})`, { timeout: 120_000 }, () => {
    let signedLog: SignedLog;
    before(async () => {
      signedLog = await createSignedLog(backend);
    });
    after(() => signedLog.dispose());

    test('every inclusion proof of every size verifies against the signed root', async () => {
      const { log } = signedLog;
      const leaves = await storedLeaves(signedLog.db);
      assert.equal(await log.size(), SIZE);
      for (let size = 1; size <= SIZE; size++) {
        for (let index = 0; index < size; index++) {
          const proof = await log.inclusionProof(index, size);
          assert.deepEqual(proof.leafHash, leaves[index], `leaf ${index}`);
          assert.deepEqual(proof.rootHash, rootAt(signedLog, size), `root of ${size}`);
          assert.ok(
            verifyInclusionProof(proof.leafHash, index, size, proof.proof, rootAt(signedLog, size)),
            `${index} in ${size}`,
          );
          const other = leaves[(index + 1) % SIZE] as Buffer;
          if (size > 1) {
            assert.ok(!verifyInclusionProof(other, index, size, proof.proof, rootAt(signedLog, size)));
          }
        }
      }
    });

    test('every consistency proof between two sizes verifies against both signed roots', async () => {
      const { log } = signedLog;
      for (let to = 1; to <= SIZE; to++) {
        for (let from = 1; from <= to; from++) {
          const proof = await log.consistencyProof(from, to);
          assert.deepEqual(proof.fromRoot, rootAt(signedLog, from), `root of ${from}`);
          assert.deepEqual(proof.toRoot, rootAt(signedLog, to), `root of ${to}`);
          assert.ok(
            verifyConsistencyProof(from, to, proof.proof, rootAt(signedLog, from), rootAt(signedLog, to)),
            `${from} → ${to}`,
          );
          if (from > 1 && from < to) {
            // Against the root of another size, the same proof fails.
            assert.ok(
              !verifyConsistencyProof(
                from,
                to,
                proof.proof,
                rootAt(signedLog, from - 1),
                rootAt(signedLog, to),
              ),
            );
          }
        }
      }
    });

    test('a log of several blocks of stored roots: proofs across the block and old read-batch boundaries', async () => {
      const opened = await backend.open(1);
      const db = opened.handles[0]?.db as unknown as SecurityDb;
      const log = createAuditLog({ db, origin: 'maos.test/audit' });
      try {
        const size = 4500;
        for (let i = 0; i < size; i += 500) {
          await Promise.all(Array.from({ length: 500 }, (_, j) => log.append(event(i + j))));
        }
        const leaves = await storedLeaves(db);
        assert.equal(leaves.length, size);
        const root = (n: number) => computeRoot(leaves.slice(0, n));
        for (const index of [0, 1999, 2000, 2001, 4000, 4499]) {
          const proof = await log.inclusionProof(index, size);
          assert.deepEqual(proof.leafHash, leaves[index], `leaf ${index}`);
          assert.ok(verifyInclusionProof(proof.leafHash, index, size, proof.proof, root(size)), `${index}`);
        }
        for (const [from, to] of [
          [1999, 4500],
          [2000, 4001],
          [2048, 4096],
          [3, 2001],
        ] as const) {
          const proof = await log.consistencyProof(from, to);
          assert.deepEqual([proof.fromRoot, proof.toRoot], [root(from), root(to)], `${from} → ${to}`);
          assert.ok(verifyConsistencyProof(from, to, proof.proof, root(from), root(to)), `${from} → ${to}`);
        }
      } finally {
        await log.close();
        await opened.dispose();
      }
    });
  });
}

const sqlite = STORE_BACKENDS.find((backend) => backend.name === 'sqlite') as StoreBackend;

describe('audit proofs after the stored log was changed (SQLite, raw SQL)', { timeout: 60_000 }, () => {
  test('an edited record: its proof and those over it fail against the signed roots, earlier ones hold', async () => {
    const signedLog = await createSignedLog(sqlite);
    try {
      const { db, log } = signedLog;
      await sql`DROP TRIGGER audit_log_no_update`.execute(db);
      await sql`UPDATE audit_log SET event = replace(event, 'key-3', 'key-X') WHERE seq = 3`.execute(db);
      const edited = await log.inclusionProof(3, SIZE);
      assert.ok(!verifyInclusionProof(edited.leafHash, 3, SIZE, edited.proof, rootAt(signedLog, SIZE)));
      // A record after it: its path holds the subtree with the edited one.
      const later = await log.inclusionProof(9, SIZE);
      assert.ok(!verifyInclusionProof(later.leafHash, 9, SIZE, later.proof, rootAt(signedLog, SIZE)));
      const consistency = await log.consistencyProof(6, SIZE);
      assert.ok(
        !verifyConsistencyProof(6, SIZE, consistency.proof, rootAt(signedLog, 6), rootAt(signedLog, SIZE)),
      );
      // From a power of two the proof holds no node over the old tree (the client has its root), so it
      // still verifies: the roots the server computes now show the edit.
      const fromEight = await log.consistencyProof(8, SIZE);
      assert.ok(
        verifyConsistencyProof(8, SIZE, fromEight.proof, rootAt(signedLog, 8), rootAt(signedLog, SIZE)),
      );
      assert.notDeepEqual(fromEight.fromRoot, rootAt(signedLog, 8));
      assert.notDeepEqual(fromEight.toRoot, rootAt(signedLog, SIZE));
      assert.notDeepEqual(edited.rootHash, rootAt(signedLog, SIZE));
      // Sizes before the edit still prove what was signed.
      const early = await log.consistencyProof(2, 3);
      assert.ok(verifyConsistencyProof(2, 3, early.proof, rootAt(signedLog, 2), rootAt(signedLog, 3)));
      const first = await log.inclusionProof(1, 3);
      assert.ok(verifyInclusionProof(first.leafHash, 1, 3, first.proof, rootAt(signedLog, 3)));
    } finally {
      await signedLog.dispose();
    }
  });

  test('a cut tail shrinks the size a proof can reach; a deleted record is refused, not proved', async () => {
    const signedLog = await createSignedLog(sqlite);
    try {
      const { db, log } = signedLog;
      await sql`DROP TRIGGER audit_log_no_delete`.execute(db);
      await sql`DELETE FROM audit_log WHERE seq >= 10`.execute(db);
      assert.equal(await log.size(), 10);
      const refusal = (error: unknown) => error instanceof AppError && error.code === 'CONFLICT';
      await assert.rejects(log.consistencyProof(8, SIZE), refusal);
      // A record gone from the middle: the stored rows no longer reach the size the last seq says.
      await sql`DELETE FROM audit_log WHERE seq = 5`.execute(db);
      assert.equal(await log.size(), 10);
      await assert.rejects(log.inclusionProof(0, 10), (error: unknown) => {
        assert.ok(refusal(error));
        assert.match(
          (error as Error).message,
          /holds 9 of the 10 records with seq 0 to 9: records are missing/,
        );
        return true;
      });
      // Up to the gap, the log still proves what was signed.
      const before = await log.consistencyProof(3, 5);
      assert.ok(verifyConsistencyProof(3, 5, before.proof, rootAt(signedLog, 3), rootAt(signedLog, 5)));
    } finally {
      await signedLog.dispose();
    }
  });

  test('a record deleted below the size is refused while later records exist, not replaced by one beyond it', async () => {
    const signedLog = await createSignedLog(sqlite);
    try {
      const { db, log } = signedLog;
      await sql`DROP TRIGGER audit_log_no_delete`.execute(db);
      await sql`DELETE FROM audit_log WHERE seq = 5`.execute(db);
      // The log goes on past the size asked for: record 10 must not stand in for the missing 5.
      assert.equal(await log.size(), SIZE);
      const refusal = (error: unknown) => {
        assert.ok(error instanceof AppError && error.code === 'CONFLICT', String(error));
        assert.match(
          (error as Error).message,
          /holds 9 of the 10 records with seq 0 to 9: records are missing/,
        );
        return true;
      };
      await assert.rejects(log.inclusionProof(0, 10), refusal);
      await assert.rejects(log.consistencyProof(3, 10), refusal);
    } finally {
      await signedLog.dispose();
    }
  });
});
