// A custom role deleted while a transaction that writes tasks of it is under way: the next phase a
// phase gate decided, and an edited plan approved with a role the session did not use before. The
// write checks the role in its transaction (PostgreSQL: and holds its row until the commit), so the
// delete waits for the commit, then counts the new tasks and is refused with INVALID_STATE naming
// the session; the tasks run. Interleavings forced with a paused query, no sleeps. SQLite and
// PostgreSQL.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import type { LlmDb } from '../../src/agents/providers/llm-tables.ts';
import { createRoleService, type RoleService } from '../../src/agents/roles/role-service.ts';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import { continueOrchestratedSession } from '../../src/engine/planner-continuation.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { createEngineSteering } from '../../src/mcp/engine-steering.ts';
import type { Database } from '../../src/store/schema.ts';
import { ACTOR, createHarness, type Harness, type HarnessOptions } from '../fixtures/engine-harness.ts';
import { markPlanOrchestrated } from '../fixtures/orchestrated-plan.ts';
import { pauseAfterQuery, waitForLockWaiter } from '../fixtures/pause-query.ts';
import { POET_ROLE } from '../fixtures/poet-role.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';

const POET = { ...POET_ROLE, capabilities: [] };

function settled<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  return promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

/** A query on the custom roles table (a write's check of the roles it names). */
const onCustomRoles = (node: string) => node.includes('custom_roles');

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`deleting a custom role while tasks of it are written (${store})`, { timeout: 60_000 }, () => {
    async function start(
      t: { after(fn: () => Promise<void>): void },
      options: Omit<HarnessOptions, 'storeUrl'>,
    ): Promise<{ h: Harness; roles: RoleService }> {
      let storeUrl: string | undefined;
      if (store === 'postgres') {
        const database = await createTestDatabase();
        t.after(() => database.drop());
        storeUrl = database.url;
      }
      const h = await createHarness({ ...options, start: false, ...(storeUrl ? { storeUrl } : {}) });
      t.after(() => h.close());
      const roles = createRoleService(h.handle.db as unknown as LlmDb);
      await roles.createRole(ACTOR.tenantId, 'test', POET);
      return { h, roles };
    }

    /** Starts the delete once the write has checked the role, and tells whether it waits for the write. */
    async function deleteDuringWrite(h: Harness, roles: RoleService, release: () => void) {
      const deleting = settled(roles.deleteRole(ACTOR.tenantId, 'poet'));
      // PostgreSQL: the delete is seen waiting for the role's row. SQLite: it waits for the one
      // connection, which the paused write holds, so it cannot finish before the release.
      const blocked =
        store === 'postgres'
          ? waitForLockWaiter(h.handle.db)
          : new Promise<void>((resolve) => setImmediate(resolve));
      const first = await Promise.race([
        deleting.then(() => 'the delete finished'),
        blocked.then(() => 'the delete waits'),
      ]);
      release();
      assert.equal(first, 'the delete waits');
      return deleting;
    }

    test('the next phase of a phase gate', async (t) => {
      const pause = pauseAfterQuery(onCustomRoles);
      let releaseVerse: () => void = () => {};
      const verseHeld = new Promise<void>((resolve) => {
        releaseVerse = resolve;
      });
      let gates = 0;
      // The orchestrator's tasks answer as the planner would; the new phase's agent waits until the
      // delete has been answered, so its task is still to finish when the delete counts.
      const runtime: AgentRuntime = {
        kind: 'llm',
        async run(task) {
          if (task.kind === 'plan') {
            gates += 1;
            const phase = {
              name: 'two',
              tasks: [{ name: 'verse', role: 'poet', instructions: 'A verse', dependsOn: [], agent: null }],
            };
            return {
              output: JSON.stringify(
                gates === 1
                  ? { decision: 'continue', reason: 'verse next', phase }
                  : { decision: 'complete', reason: 'met' },
              ),
            };
          }
          if (task.kind === 'synthesize') return { output: 'The answer.' };
          if (task.name === 'verse') await verseHeld;
          return { output: `output of ${task.name}` };
        },
      };
      const { h, roles } = await start(t, {
        llm: runtime,
        maxAttempts: 1,
        engineDb: (db) => db.withPlugin(pause.plugin),
        continueSession: (trx, session, now) =>
          continueOrchestratedSession(trx, session, { maxPhases: 3, maxAttempts: 1 }, now),
      });
      t.after(() => releaseVerse());
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'o',
        agents: [{ name: 'draft', role: 'engineer', task: 'Draft' }],
      });
      // An adaptive session the orchestrator planned: phase gates follow its phases.
      await h.handle.db
        .updateTable('sessions')
        .set({ strategy: 'adaptive' })
        .where('id', '=', session.id)
        .execute();
      await markPlanOrchestrated(h.handle.db, session.id);
      h.engine.start();
      await Promise.race([
        pause.reached,
        h
          .waitForSession(session.id)
          .then(() => assert.fail('the phase was written without checking its roles')),
      ]);
      const refused = await deleteDuringWrite(h, roles, pause.release);
      assert.ok(refused.error instanceof AppError, 'the role was deleted under the new phase');
      assert.equal(refused.error.code, 'INVALID_STATE');
      assert.match(refused.error.message, new RegExp(`running session\\(s\\) ${session.id}`));
      releaseVerse();
      const done = await h.waitForSession(session.id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.equal(done.tasks.find((task) => task.name === 'verse')?.status, 'succeeded');
    });

    test('an edited plan approved with a role the session did not use', async (t) => {
      const { h, roles } = await start(t, {
        llm: { kind: 'llm', run: async () => ({ output: 'x' }) },
        concurrency: 0,
      });
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'o',
        agents: [{ name: 'draft', role: 'engineer', task: 'Draft' }],
      });
      // The session waits for approval of its orchestrator-made plan.
      await h.handle.db
        .updateTable('sessions')
        .set({ status: 'awaiting_approval' })
        .where('id', '=', session.id)
        .execute();
      await h.handle.db
        .updateTable('tasks')
        .set({ status: 'pending', ready_at: null })
        .where('session_id', '=', session.id)
        .execute();
      await markPlanOrchestrated(h.handle.db, session.id);
      const pause = pauseAfterQuery(onCustomRoles);
      const steering = createEngineSteering({
        db: h.handle.db.withPlugin(pause.plugin),
        planRules: async (tenantId: string, trx: Kysely<Database>) => {
          const names = new Set(
            (await roles.listRoles(tenantId, trx as unknown as LlmDb)).map((role) => role.name),
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
      const approving = settled(
        steering.approvePlan(ACTOR, session.id, {
          phases: [
            {
              name: 'main',
              tasks: [
                { name: 'draft', role: 'engineer', instructions: 'Draft' },
                { name: 'verse', role: 'poet', instructions: 'A verse' },
              ],
            },
          ],
        }),
      );
      await Promise.race([
        pause.reached,
        approving.then(() => assert.fail('the approval did not read the roles in its transaction')),
      ]);
      const refused = await deleteDuringWrite(h, roles, pause.release);
      const approved = await approving;
      assert.equal(approved.error, undefined, String(approved.error));
      assert.ok(refused.error instanceof AppError, 'the role was deleted under the approved plan');
      assert.equal(refused.error.code, 'INVALID_STATE');
      assert.match(refused.error.message, new RegExp(`running session\\(s\\) ${session.id}`));
      const verse = await h.handle.db
        .selectFrom('tasks')
        .select('status')
        .where('session_id', '=', session.id)
        .where('name', '=', 'verse')
        .executeTakeFirstOrThrow();
      assert.equal(verse.status, 'ready');
    });
  });
}
