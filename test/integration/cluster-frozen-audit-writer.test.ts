// Cluster mode: a replica frozen in the middle of an audit append (SIGSTOP, a paused VM or container)
// holds the audit log's append lock. The server ends its transaction after a bound, so the other
// replicas' appends are stored instead of failing on the lock timeout (and being counted as lost).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { KyselyPlugin, PluginTransformResultArgs, QueryResult, UnknownRow } from 'kysely';
import { createAuditLog } from '../../src/security/audit/audit-log.ts';
import type { AuditEventInput } from '../../src/security/audit/audit-record.ts';
import { verifyAuditEntries } from '../../src/security/audit/verify.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { createDatabase, type DatabaseHandle } from '../../src/store/db.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';
import { waitFor } from '../fixtures/wait-for.ts';

function auditEvent(id: string): AuditEventInput {
  return {
    action: 'keys:manage',
    actor: { type: 'user', id: 'u1', tenant: 't1', ip: null, user_agent: null, auth_method: 'apikey' },
    target: { type: 'api_key', id, tenant: 't1' },
    outcome: 'success',
  };
}

/**
 * Stops the first select the log sends (the chain head's read, under the append lock) from
 * answering until `thaw`: the replica's statements stop there, as a frozen process's would.
 */
function freezeAtHeadRead() {
  let frozen = false;
  let used = false;
  let thaw!: () => void;
  const thawed = new Promise<void>((resolve) => {
    thaw = resolve;
  });
  const selects = new Set<unknown>();
  const plugin: KyselyPlugin = {
    transformQuery(args) {
      if (args.node.kind === 'SelectQueryNode') selects.add(args.queryId);
      return args.node;
    },
    async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
      if (!used && selects.has(args.queryId)) {
        used = true;
        frozen = true;
        await thawed;
      }
      return args.result;
    },
  };
  return { plugin, isFrozen: () => frozen, thaw };
}

describe('a replica frozen mid-append (PostgreSQL)', { timeout: 120_000 }, () => {
  let database: TestDatabase;
  const handles: DatabaseHandle[] = [];

  before(async () => {
    database = await createTestDatabase();
    for (let i = 0; i < 2; i++) {
      handles.push(
        createDatabase({
          dataDir: '.',
          store: { url: database.url, synchronous: 'full', busyTimeoutMs: 5000, poolSize: 3 },
        }),
      );
    }
  });

  after(async () => {
    await Promise.allSettled(handles.map((handle) => handle.close()));
    await database?.drop();
  });

  test("does not hold the append lock until it resumes: the other replicas' appends are stored", async () => {
    const freezer = freezeAtHeadRead();
    const frozenDb = handles[0]!.db.withPlugin(freezer.plugin) as unknown as SecurityDb;
    const frozenLog = createAuditLog({ db: frozenDb, origin: 'maos.test/audit' });
    const otherLog = createAuditLog({
      db: handles[1]!.db as unknown as SecurityDb,
      origin: 'maos.test/audit',
    });

    const frozenAppend = frozenLog.append(auditEvent('frozen')).then(
      () => null,
      (error: unknown) => error,
    );
    await waitFor(() => freezer.isFrozen(), 10_000, 'the frozen replica holding the append lock');

    // Before the fix this failed on the lock timeout (30 s) while the frozen replica held the lock.
    const stored = await otherLog.append(auditEvent('other')).finally(() => freezer.thaw());
    assert.equal(stored.target?.id, 'other');

    // Resumed, the frozen replica's append either failed (its transaction was ended) or was stored
    // by a retry; either way the chain holds every stored record and verifies.
    await frozenAppend;
    const db = handles[1]!.db as unknown as SecurityDb;
    const rows = await db
      .selectFrom('audit_log')
      .select(['seq', 'event', 'prev_hash', 'hash'])
      .orderBy('seq')
      .execute();
    const targets = rows.map((row) => (JSON.parse(row.event) as { target: { id: string } }).target.id);
    assert.ok(targets.includes('other'));
    const report = await verifyAuditEntries(rows.map((row) => ({ ...row, seq: Number(row.seq) })));
    assert.equal(report.ok, true, report.problems.join('; '));
    await Promise.allSettled([frozenLog.close(), otherLog.close()]);
  });
});
