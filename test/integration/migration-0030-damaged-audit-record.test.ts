// Migration 0030 (the audit log's target type index) on a database whose audit log holds a record
// whose stored text is not JSON (the database was edited: GET /v1/audit answers 409 for it, `maos
// audit verify` names it). On SQLite the index expression read each record with json_extract, which
// fails on such a text: the upgrade stopped at 0030 with "malformed JSON", and no build past it
// could start on the database. Now the record has no target type in the index, as on PostgreSQL,
// and the other records are found by their type through the index. PostgreSQL needs
// --test-global-setup=test/fixtures/postgres-global-setup.ts.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { type Kysely, sql } from 'kysely';
import { configSchema } from '../../src/config/schema.ts';
import { createDatabase, type DatabaseHandle } from '../../src/store/db.ts';
import { getMigrationStatus, migrateToLatest } from '../../src/store/migrate.ts';
import { auditTargetTypeExpression } from '../../src/store/migrations/0030-audit-target-type-index.ts';
import { MIGRATIONS } from '../../src/store/migrations/index.ts';
import { makeTempDir } from '../fixtures/engine-harness.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';

const BEFORE_0030 = MIGRATIONS.findIndex((entry) => entry.name === '0030_audit_target_type_index');

/** A record as MAOS writes it (canonical JSON), of target type `type`. */
function event(seq: number, type: string): string {
  return JSON.stringify({
    action: 'keys:create',
    actor: { id: 'cli:root', tenant: 'acme', type: 'system' },
    id: `01a21400-0000-7000-8000-00000000000${seq}`,
    outcome: 'success',
    seq,
    target: { id: `k${seq}`, tenant: 'acme', type },
  });
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`migration 0030 over an edited audit record (${store})`, { timeout: 120_000 }, () => {
    let dir: string;
    let postgres: TestDatabase | undefined;
    let handle: DatabaseHandle;

    before(async () => {
      dir = makeTempDir();
      if (store === 'postgres') postgres = await createTestDatabase({ empty: true });
      handle = createDatabase(
        configSchema.parse({
          dataDir: dir,
          store: postgres ? { url: postgres.url } : { synchronous: 'normal' },
        }),
      );
    });
    after(async () => {
      await handle?.close();
      await postgres?.drop();
      rmSync(dir, { recursive: true, force: true });
    });

    test('upgrades, and the records that are JSON are found by their target type', async () => {
      // biome-ignore lint/suspicious/noExplicitAny: rows of an older schema than the current types
      const db = handle.db as unknown as Kysely<any>;
      await migrateToLatest(db, MIGRATIONS.slice(0, BEFORE_0030));
      const texts = [
        event(1, 'keys'),
        // Cut short by an edit, and text that is no JSON at all.
        event(2, 'keys').slice(0, 40),
        'edited by hand',
        event(4, 'sessions'),
        // Cut short after its target: PostgreSQL, which reads the text, still finds its type.
        event(5, 'keys').slice(0, -1),
      ];
      await db
        .insertInto('audit_log')
        .values(
          texts.map((text, index) => ({
            seq: index + 1,
            id: `01a21400-0000-7000-8000-00000000000${index + 1}`,
            time: '2026-01-01T00:00:00.000Z',
            tenant_id: 'acme',
            action: 'keys:create',
            outcome: 'success',
            event: text,
            prev_hash: '0'.repeat(64),
            hash: '0'.repeat(64),
          })),
        )
        .execute();

      const pending = (await getMigrationStatus(db)).pending;
      assert.ok(pending.includes('0030_audit_target_type_index'));
      assert.deepEqual(await migrateToLatest(db), pending);
      assert.equal((await getMigrationStatus(db)).current, true);

      const ofType = async (type: string) =>
        (
          await db
            .selectFrom('audit_log')
            .select('seq')
            .where('tenant_id', '=', 'acme')
            .where(auditTargetTypeExpression(store === 'postgres'), 'in', [type])
            .orderBy('seq')
            .execute()
        ).map((row) => Number(row.seq));
      assert.deepEqual(await ofType('keys'), store === 'postgres' ? [1, 5] : [1]);
      assert.deepEqual(await ofType('sessions'), [4]);
      if (store === 'sqlite') {
        // The query spells the index's expression: SQLite reads the index, not every record.
        const plan = await sql<{ detail: string }>`explain query plan select seq from audit_log
          where tenant_id = 'acme' and ${auditTargetTypeExpression(false)} = 'keys'`.execute(db);
        assert.match(plan.rows.map((row) => row.detail).join('\n'), /audit_log_tenant_target_type_idx/);
      }
    });
  });
}
