// PostgreSQL ends every idle connection of a replica's pool (pg_terminate_backend here; the end of a
// read-only failover period or a server restart do the same). The next engine write and the audit
// log's final checkpoint used to meet one of those connections before the pool had noticed, and
// failed (57P01, ECONNRESET); the audit log's close tried its checkpoint twice for that. The pool
// now sends such a checkout's first statement again on a new connection: each succeeds on its
// first call.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createAuditLog } from '../../src/security/audit/audit-log.ts';
import type { AuditEventInput } from '../../src/security/audit/audit-record.ts';
import { generateSigningKeyPem, loadCheckpointSigner } from '../../src/security/audit/checkpoint.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { endIdleSessionsUnnoticed } from '../fixtures/end-idle-connections.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';

const instant = {
  kind: 'fake' as const,
  run: async (task: { name: string }) => ({ output: `done ${task.name}`, usage: { inputTokens: 1 } }),
};

describe('PostgreSQL ends the idle connections of the pool', { timeout: 120_000 }, () => {
  let database: TestDatabase;
  let admin: pg.Client;
  let h: Harness;
  before(async () => {
    database = await createTestDatabase();
    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    h = await createHarness({ storeUrl: database.url, llm: instant, start: false });
  });
  after(async () => {
    await h?.close();
    await admin?.end();
    await database?.drop();
  });

  test('the next engine write succeeds on its first call', async () => {
    // A few statements in parallel leave several connections idle in the pool.
    await Promise.all(Array.from({ length: 4 }, () => h.engine.service.listSessions(ACTOR, { limit: 10 })));
    assert.ok(endIdleSessionsUnnoticed(database.url) > 0, 'the pool had idle connections');
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: 'after the connections were ended',
      agents: [{ name: 'only', role: 'engineer', task: 't' }],
    });
    assert.equal(
      (await h.engine.service.getSession(ACTOR, session.id)).objective,
      'after the connections were ended',
    );
  });

  test("the audit log's final checkpoint succeeds on its first try", async () => {
    const signer = loadCheckpointSigner('maos.test/audit', generateSigningKeyPem());
    const db = h.handle.db as unknown as SecurityDb;
    const log = createAuditLog({ db, origin: 'maos.test/audit', signer });
    await Promise.all(Array.from({ length: 4 }, (_, i) => log.append(auditEvent(i))));
    assert.ok(endIdleSessionsUnnoticed(database.url) > 0, 'the pool had idle connections');
    await log.close();
    const { rows } = await admin.query<{ size: string }>('select max(size) as size from audit_checkpoints');
    assert.equal(Number(rows[0]?.size), 4, 'the final checkpoint covers the four records');
  });
});

function auditEvent(i: number): AuditEventInput {
  return {
    action: 'sessions:create',
    actor: {
      type: 'service',
      id: `svc-${i}`,
      tenant: 'default',
      ip: '127.0.0.1',
      user_agent: 'test',
      auth_method: 'apikey',
    },
    target: { type: 'session', id: `s-${i}`, tenant: 'default' },
    outcome: 'success',
    reason: null,
    request_id: `req-${i}`,
  };
}
