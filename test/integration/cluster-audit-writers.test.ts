// The audit log written by several replicas at once on PostgreSQL: every append of every replica is
// stored (none given up after losing races for the chain head), and the chain verifies.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createAuditLog } from '../../src/security/audit/audit-log.ts';
import type { AuditEventInput } from '../../src/security/audit/audit-record.ts';
import { verifyAuditEntries } from '../../src/security/audit/verify.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { createDatabase, type DatabaseHandle } from '../../src/store/db.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';

const REPLICAS = 3;
const APPENDS_PER_REPLICA = 60;

function auditEvent(replica: number, i: number): AuditEventInput {
  return {
    action: 'keys:manage',
    actor: {
      type: 'user',
      id: `r${replica}`,
      tenant: 't1',
      ip: null,
      user_agent: null,
      auth_method: 'apikey',
    },
    target: { type: 'api_key', id: `k${replica}-${i}`, tenant: 't1' },
    outcome: 'success',
  };
}

describe('audit log with concurrent writers on several replicas (PostgreSQL)', { timeout: 120_000 }, () => {
  let database: TestDatabase;
  const handles: DatabaseHandle[] = [];

  before(async () => {
    database = await createTestDatabase();
    // One pool per replica, as separate processes have.
    for (let i = 0; i < REPLICAS; i++) {
      handles.push(
        createDatabase({
          dataDir: '.',
          store: { url: database.url, synchronous: 'full', busyTimeoutMs: 5000, poolSize: 4 },
        }),
      );
    }
  });

  after(async () => {
    await Promise.allSettled(handles.map((handle) => handle.close()));
    await database?.drop();
  });

  test('every append is stored once and the chain verifies', async () => {
    const logs = handles.map((handle) =>
      createAuditLog({ db: handle.db as unknown as SecurityDb, origin: 'maos.test/audit' }),
    );
    // Each replica appends one record after another (as requests arrive), all replicas at once:
    // every append races the other replicas for the chain head.
    const outcomes = await Promise.all(
      logs.map(async (log, replica) => {
        let failed = 0;
        for (let i = 0; i < APPENDS_PER_REPLICA; i++) {
          await log.append(auditEvent(replica, i)).catch(() => {
            failed += 1;
          });
        }
        return failed;
      }),
    );
    assert.deepEqual(outcomes, new Array(REPLICAS).fill(0), 'appends that failed, per replica');
    const db = handles[0]!.db as unknown as SecurityDb;
    const rows = await db
      .selectFrom('audit_log')
      .select(['seq', 'event', 'prev_hash', 'hash'])
      .orderBy('seq')
      .execute();
    assert.equal(rows.length, REPLICAS * APPENDS_PER_REPLICA);
    const targets = new Set(
      rows.map((row) => (JSON.parse(row.event) as { target: { id: string } }).target.id),
    );
    assert.equal(targets.size, REPLICAS * APPENDS_PER_REPLICA);
    const report = await verifyAuditEntries(rows.map((row) => ({ ...row, seq: Number(row.seq) })));
    assert.equal(report.ok, true, report.problems.join('; '));
  });
});
