// Plan approval on the real engine and SQLite: approve with edits (the edited plan runs, a new plan
// version is stored), reject with a reason (the session ends failed), and wrong-state errors.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createRuntimeRegistry } from '../../src/agents/runtimes/runtime.ts';
import type { SessionDetail } from '../../src/domain/types.ts';
import { createEngine, type EngineInternals } from '../../src/engine/index.ts';
import { approvePlan, rejectPlan } from '../../src/engine/planner-approval-store.ts';
import { listPlanVersions } from '../../src/engine/planner-plan-versions.ts';
import type { Actor } from '../../src/engine/session-service.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createDatabase, type DatabaseHandle } from '../../src/store/db.ts';
import { appendEvents } from '../../src/store/event-store.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { IGNORE_DAMAGED_JSON } from '../../src/store/rows.ts';

const ACTOR: Actor = { tenantId: 'default', principalId: 'test' };
const rules = {
  isKnownRole: () => true,
  isKnownRunner: () => false,
  maxAgentsPerRole: 3,
  maxTasksPerPhase: 12,
};

describe('plan approval', { timeout: 30_000 }, () => {
  let dir: string;
  let handle: DatabaseHandle;
  let engine: EngineInternals;
  const ran: Array<{ name: string; instructions: string }> = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-approval-'));
    handle = createDatabase({ dataDir: dir, store: { synchronous: 'normal', busyTimeoutMs: 5000 } });
    await migrateToLatest(handle.db);
    const runtimes = createRuntimeRegistry();
    runtimes.registerLlm({
      kind: 'llm',
      run: async (task) => {
        ran.push({ name: task.name, instructions: task.instructions });
        return { output: `output of ${task.name}` };
      },
    });
    engine = createEngine({
      config: {
        workers: { concurrency: 2, pollIntervalMs: 50 },
        tasks: { leaseSeconds: 30, maxAttempts: 1 },
        runners: {},
      },
      db: handle.db,
      logger: createLogger({ level: 'silent' }),
      runtimes,
    });
  });
  after(async () => {
    await engine.stop({ graceMs: 500 });
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Creates a session and puts it where approval-required sessions wait: nothing ready yet. */
  async function awaitingSession(): Promise<string> {
    const { session } = await engine.service.createSession(ACTOR, {
      objective: 'Needs approval',
      strategy: 'pipeline',
      agents: [
        { name: 'build', role: 'engineer', task: 'Build it' },
        { name: 'check', role: 'qa', task: 'Check it', depends_on: ['build'] },
      ],
    });
    await handle.db
      .updateTable('sessions')
      .set({ status: 'awaiting_approval' })
      .where('id', '=', session.id)
      .execute();
    await handle.db
      .updateTable('tasks')
      .set({ status: 'pending', ready_at: null })
      .where('session_id', '=', session.id)
      .execute();
    return session.id;
  }

  async function waitForSession(sessionId: string): Promise<SessionDetail> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const detail = await engine.service.getSession(ACTOR, sessionId);
      if (['completed', 'failed', 'cancelled'].includes(detail.status)) return detail;
      if (Date.now() > deadline) throw new Error(`session still ${detail.status}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  test('an invalid edit is rejected with every problem and changes nothing', async () => {
    const sessionId = await awaitingSession();
    const error = await handle.db
      .transaction()
      .execute((trx) =>
        approvePlan(
          trx,
          { id: sessionId, tenantId: ACTOR.tenantId },
          {
            editedPlan: {
              phases: [
                { name: 'p', tasks: [{ name: 'x', role: 'qa', instructions: 'y', depends_on: ['ghost'] }] },
              ],
            },
            rules,
            maxAttempts: 1,
          },
          Date.now(),
        ),
      )
      .catch((e: unknown) => e);
    assert.ok(error instanceof AppError);
    assert.equal(error.code, 'INVALID_PLAN');
    assert.match(error.message, /depends on unknown task "ghost"/);
    const detail = await engine.service.getSession(ACTOR, sessionId);
    assert.equal(detail.status, 'awaiting_approval');
    assert.equal(detail.planVersion, 1);
  });

  test('reject ends the session failed with the reason; approving it afterwards is INVALID_STATE', async () => {
    const sessionId = await awaitingSession();
    const session = { id: sessionId, tenantId: ACTOR.tenantId };
    await handle.db.transaction().execute(async (trx) => {
      const rejected = await rejectPlan(trx, session, 'too risky', Date.now());
      await appendEvents(trx, session, rejected.events, Date.now());
    });
    const detail = await engine.service.getSession(ACTOR, sessionId);
    assert.equal(detail.status, 'failed');
    assert.equal(detail.error, 'Plan rejected: too risky');
    assert.deepEqual(
      detail.tasks.map((t) => [t.name, t.status]),
      [
        ['build', 'cancelled'],
        ['check', 'cancelled'],
      ],
    );
    const events = await engine.service.listEvents(ACTOR, sessionId, 0, 1000);
    assert.equal(events.at(-1)?.type, 'session.finished');
    const again = await handle.db
      .transaction()
      .execute((trx) => approvePlan(trx, session, { rules, maxAttempts: 1 }, Date.now()))
      .catch((e: unknown) => e);
    assert.ok(again instanceof AppError);
    assert.equal(again.code, 'INVALID_STATE');
    assert.match(again.message, /The session is failed, not awaiting approval/);
  });

  test('an edit may not move a task that ran to another phase', async () => {
    // build and check ran in phase `main`; check waits for build. Moved into a new phase after
    // `main`, check still waits for build alone (the phase's barrier), so only its phase changed.
    const sessionId = await awaitingSession();
    await handle.db
      .updateTable('tasks')
      .set({ status: 'succeeded', result: 'done' })
      .where('session_id', '=', sessionId)
      .execute();
    const editedPlan = {
      phases: [
        { name: 'main', tasks: [{ name: 'build', role: 'engineer', instructions: 'Build it' }] },
        {
          name: 'next',
          tasks: [
            { name: 'check', role: 'qa', instructions: 'Check it', dependsOn: ['build'] },
            { name: 'docs', role: 'documenter', instructions: 'Document it' },
          ],
        },
      ],
    };
    const error = await handle.db
      .transaction()
      .execute((trx) =>
        approvePlan(
          trx,
          { id: sessionId, tenantId: ACTOR.tenantId },
          { editedPlan, rules, maxAttempts: 1 },
          Date.now(),
        ),
      )
      .catch((e: unknown) => e);
    assert.ok(error instanceof AppError, String(error));
    assert.equal(error.code, 'INVALID_PLAN');
    assert.match(error.message, /task "check" has already started and cannot be changed/);
    const versions = await listPlanVersions(handle.db, ACTOR.tenantId, sessionId, IGNORE_DAMAGED_JSON);
    assert.equal(versions.length, 1, 'no plan version showing check in a phase it did not run in');
  });

  // Last: it starts the engine, after which new sessions would begin running at once.
  test('approve with edits: the edited plan runs and is stored as version 2', async () => {
    const sessionId = await awaitingSession();
    const editedPlan = {
      phases: [
        {
          name: 'main',
          tasks: [
            { name: 'build', role: 'engineer', instructions: 'Build it with tests' },
            { name: 'docs', role: 'documenter', instructions: 'Document it', depends_on: ['build'] },
          ],
        },
      ],
    };
    const session = { id: sessionId, tenantId: ACTOR.tenantId };
    const result = await handle.db.transaction().execute(async (trx) => {
      const approved = await approvePlan(trx, session, { editedPlan, rules, maxAttempts: 1 }, Date.now());
      await appendEvents(trx, session, approved.events, Date.now());
      return approved;
    });
    assert.deepEqual([result.readied, result.planVersion], [1, 2]);
    engine.start();
    const done = await waitForSession(sessionId);
    assert.equal(done.status, 'completed', done.error ?? '');
    assert.equal(done.result, 'output of docs');
    assert.deepEqual(
      done.tasks.map((t) => t.name),
      ['build', 'docs'],
    );
    assert.deepEqual(
      ran.filter((r) => r.name === 'build').map((r) => r.instructions),
      ['Build it with tests'],
    );
    const versions = await listPlanVersions(handle.db, ACTOR.tenantId, sessionId, IGNORE_DAMAGED_JSON);
    assert.deepEqual(versions.at(-1)?.diff?.removed, ['check']);
    assert.deepEqual(versions.at(-1)?.diff?.added, ['docs']);
    const events = await engine.service.listEvents(ACTOR, sessionId, 0, 1000);
    assert.ok(
      events.some(
        (e) => e.type === 'session.status' && e.data.from === 'awaiting_approval' && e.data.to === 'running',
      ),
    );
  });
});
