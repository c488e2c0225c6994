// A custom role deleted while a plan that uses it waits for approval, racing the approval: the
// approval reads the tenant's roles in its own transaction, after the session lock, so a delete that
// committed first is seen (INVALID_PLAN, the plan keeps waiting); a delete that comes while the
// approval holds the lock waits for it and is then refused (409). SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import type { LlmDb } from '../../src/agents/providers/llm-tables.ts';
import { createRoleService } from '../../src/agents/roles/role-service.ts';
import { approvePlan } from '../../src/engine/planner-approval-store.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { createEngineSteering } from '../../src/mcp/engine-steering.ts';
import type { Database } from '../../src/store/schema.ts';
import { lockSessions } from '../../src/store/session-locks.ts';
import { ACTOR, createHarness } from '../fixtures/engine-harness.ts';
import { markPlanOrchestrated } from '../fixtures/orchestrated-plan.ts';
import { POET_ROLE } from '../fixtures/poet-role.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';

const POET = { ...POET_ROLE, capabilities: [] };

/** A session whose one task (role `poet`, a custom role) waits for approval. */
async function awaitingPoetSession(t: { after(fn: () => unknown): void }, store: 'sqlite' | 'postgres') {
  let storeUrl: string | undefined;
  if (store === 'postgres') {
    const database = await createTestDatabase();
    t.after(() => database.drop());
    storeUrl = database.url;
  }
  const h = await createHarness({
    start: false,
    concurrency: 0,
    llm: { kind: 'llm', run: async () => ({ output: 'x' }) },
    ...(storeUrl ? { storeUrl } : {}),
  });
  t.after(() => h.close());
  const db = h.handle.db;
  const roles = createRoleService(db as unknown as LlmDb);
  await roles.createRole(ACTOR.tenantId, 'test', POET);
  const { session } = await h.engine.service.createSession(ACTOR, {
    objective: 'o',
    agents: [{ name: 'verse', role: 'engineer', task: 'A verse' }],
  });
  await db
    .updateTable('sessions')
    .set({ status: 'awaiting_approval' })
    .where('id', '=', session.id)
    .execute();
  await db
    .updateTable('tasks')
    .set({ status: 'pending', ready_at: null, role: 'poet' })
    .where('session_id', '=', session.id)
    .execute();
  await markPlanOrchestrated(db, session.id);

  return { db, roles, sessionId: session.id };
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`approving a plan while its custom role is deleted (${store})`, { timeout: 60_000 }, () => {
    test('a delete that lands between reading the roles and the approval is seen', async (t) => {
      const { db, roles, sessionId } = await awaitingPoetSession(t, store);
      // The race: the role is deleted (allowed, the plan still waits) just before the approval's
      // transaction starts, after whatever the approval read before it.
      let deleted = false;
      const racing = new Proxy(db, {
        get(target, property) {
          if (property === 'transaction' && !deleted) {
            return () => {
              const builder = target.transaction();
              return {
                async execute<T>(work: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
                  deleted = true;
                  await roles.deleteRole(ACTOR.tenantId, 'poet');
                  return builder.execute(work);
                },
              };
            };
          }
          const value = Reflect.get(target, property, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      const steering = createEngineSteering({
        db: racing,
        planRules: async (tenantId: string, trx?: Kysely<Database>) => {
          const names = new Set(
            (await roles.listRoles(tenantId, trx as unknown as LlmDb | undefined)).map((r) => r.name),
          );
          return {
            isKnownRole: (role: string) => names.has(role),
            isKnownRunner: () => true,
            maxAgentsPerRole: 3,
            maxTasksPerPhase: 12,
          };
        },
        maxAttempts: 1,
      });
      const error = await steering.approvePlan(ACTOR, sessionId).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(deleted);
      assert.ok(error instanceof AppError, `approval went ahead with a deleted role: ${String(error)}`);
      assert.equal(error.code, 'INVALID_PLAN');
      assert.match(error.message, /unknown role "poet"/);
      const row = await db
        .selectFrom('sessions')
        .select('status')
        .where('id', '=', sessionId)
        .executeTakeFirstOrThrow();
      assert.equal(row.status, 'awaiting_approval');
    });
  });
}

describe('deleting a custom role while an approval of a plan using it is under way (postgres)', {
  timeout: 60_000,
}, () => {
  test('the delete waits for the approval, then is refused: the session now runs the role', async (t) => {
    const { db, roles, sessionId } = await awaitingPoetSession(t, 'postgres');
    const rules = {
      isKnownRole: (role: string) => role === 'poet',
      isKnownRunner: () => true,
      maxAgentsPerRole: 3,
      maxTasksPerPhase: 12,
    };
    let deletion: Promise<unknown> = Promise.resolve();
    await db.transaction().execute(async (trx) => {
      await lockSessions(trx, [sessionId]);
      // The delete starts while the approval holds the session lock and has read the roles.
      deletion = roles.deleteRole(ACTOR.tenantId, 'poet').then(
        () => undefined,
        (e: unknown) => e,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      await approvePlan(
        trx,
        { id: sessionId, tenantId: ACTOR.tenantId },
        { rules, maxAttempts: 1 },
        Date.now(),
      );
    });
    const error = await deletion;
    assert.ok(error instanceof AppError, 'the role was deleted under an approval that started its session');
    assert.equal(error.code, 'INVALID_STATE');
    assert.match(error.message, new RegExp(sessionId));
    assert.ok(await roles.findRole(ACTOR.tenantId, 'poet'));
  });
});
