// A session whose latest stored plan cannot be read (a hand edit of `plans.body` gone wrong). It is
// approved with an edited plan, not answered a 500: JSON whose phases hold no tasks passed as a plan
// and the approval's walk of the waiting plan's tasks threw a TypeError. An orchestrator-planned one
// is still the orchestrator's: read as absent, its plan no longer said so, and the session completed
// as one of its own agents would (no synthesis; the phase a gate had decided dropped), an edited
// approval stored a plan without the orchestrator's mark (the same afterwards), and a steering
// message was refused as for a session with no orchestrator.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createRuntimeRegistry } from '../../src/agents/runtimes/runtime.ts';
import { type PlanBody, ZERO_USAGE } from '../../src/domain/types.ts';
import { createEngine, type EngineInternals } from '../../src/engine/index.ts';
import { applyInitialPlan } from '../../src/engine/initial-plan.ts';
import { approvePlan } from '../../src/engine/planner-approval-store.ts';
import {
  type Continuation,
  type ContinuationFailure,
  continueOrchestratedSession,
  INITIAL_PLAN_TASK_NAME,
  ORCHESTRATOR_PLAN_ORIGIN,
  SYNTHESIS_TASK_NAME,
} from '../../src/engine/planner-continuation.ts';
import { addSteeringMessage } from '../../src/engine/planner-steering.ts';
import type { Actor } from '../../src/engine/session-service.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createDatabase, type DatabaseHandle } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';

const ACTOR: Actor = { tenantId: 'default', principalId: 'test' };
const rules = {
  isKnownRole: () => true,
  isKnownRunner: () => false,
  maxAgentsPerRole: 3,
  maxTasksPerPhase: 12,
};

const firstPhase: PlanBody = {
  phases: [
    {
      name: 'first',
      tasks: [{ name: 'survey', role: 'researcher', instructions: 'Survey', dependsOn: [] }],
    },
  ],
};
const edited = {
  phases: [
    { name: 'first', tasks: [{ name: 'survey', role: 'researcher', instructions: 'Survey, better' }] },
  ],
};

/** Not JSON; JSON that is no plan; phases without their tasks. */
const DAMAGED = ['{"phases": [', '{"origin": "orchestrator"}', '{"phases": [{"name": "first"}]}'];

describe('an unreadable plan', { timeout: 30_000 }, () => {
  let dir: string;
  let handle: DatabaseHandle;
  let engine: EngineInternals;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-damaged-orchestrated-plan-'));
    handle = createDatabase({ dataDir: dir, store: { synchronous: 'normal', busyTimeoutMs: 5000 } });
    await migrateToLatest(handle.db);
    const runtimes = createRuntimeRegistry();
    runtimes.registerLlm({ kind: 'llm', run: async () => ({ output: 'unused' }) });
    engine = createEngine({
      config: {
        workers: { concurrency: 0, pollIntervalMs: 1000 },
        tasks: { leaseSeconds: 30, maxAttempts: 1 },
        runners: {},
      },
      db: handle.db,
      logger: createLogger({ level: 'silent' }),
      runtimes,
      planner: { planInitial: async () => ({ plan: firstPhase, usage: { ...ZERO_USAGE }, rounds: 1 }) },
    });
  });
  after(async () => {
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A session the orchestrator planned (its first plan applied), its plan then damaged. */
  async function planned(body: string, input: { approval?: 'required'; strategy?: 'adaptive' } = {}) {
    const { session } = await engine.service.createSession(ACTOR, { objective: 'Plan me', ...input });
    const result = JSON.stringify({ ...firstPhase, origin: ORCHESTRATOR_PLAN_ORIGIN });
    await succeed(session.id, { [INITIAL_PLAN_TASK_NAME]: result });
    const task = await handle.db
      .selectFrom('tasks')
      .select(['id', 'position'])
      .where('session_id', '=', session.id)
      .where('name', '=', INITIAL_PLAN_TASK_NAME)
      .executeTakeFirstOrThrow();
    const applied = await handle.db
      .transaction()
      .execute((trx) =>
        applyInitialPlan(
          trx,
          { id: session.id, tenantId: ACTOR.tenantId },
          { id: task.id, position: Number(task.position), result },
          Date.now(),
        ),
      );
    assert.ok(applied && !('error' in applied), JSON.stringify(applied));
    await handle.db.updateTable('plans').set({ body }).where('session_id', '=', session.id).execute();
    return session.id;
  }

  async function succeed(sessionId: string, results: Record<string, string>): Promise<void> {
    for (const [name, result] of Object.entries(results)) {
      await handle.db
        .updateTable('tasks')
        .set({ status: 'succeeded', result })
        .where('session_id', '=', sessionId)
        .where('name', '=', name)
        .execute();
    }
  }

  /** The continuation when every task of the session has succeeded (as the finishes call it). */
  const step = (sessionId: string): Promise<Continuation | ContinuationFailure | null> =>
    handle.db
      .transaction()
      .execute((trx) =>
        continueOrchestratedSession(
          trx,
          { id: sessionId, tenantId: ACTOR.tenantId },
          { maxPhases: 3, maxAttempts: 1 },
          Date.now(),
        ),
      );

  const approve = (sessionId: string, editedPlan?: unknown) =>
    handle.db
      .transaction()
      .execute((trx) =>
        approvePlan(
          trx,
          { id: sessionId, tenantId: ACTOR.tenantId },
          { ...(editedPlan === undefined ? {} : { editedPlan }), rules, maxAttempts: 1 },
          Date.now(),
        ),
      );

  test('of a session submitted with its agents: an edited approval replaces it', async () => {
    for (const body of DAMAGED) {
      const { session } = await engine.service.createSession(ACTOR, {
        objective: 'Mine',
        approval: 'required',
        agents: [{ name: 'survey', role: 'researcher', task: 'Survey' }],
      });
      await handle.db.updateTable('plans').set({ body }).where('session_id', '=', session.id).execute();
      const approved = await approve(session.id, edited);
      assert.equal(approved.planVersion, 2, body);
    }
  });

  test("of the orchestrator's session: its synthesis still follows its tasks", async () => {
    for (const body of DAMAGED) {
      const sessionId = await planned(body);
      await succeed(sessionId, { survey: 'surveyed' });
      const next = await step(sessionId);
      assert.ok(next !== null && !('error' in next), `${body}: ${JSON.stringify(next)}`);
      assert.equal(next.readied, 1);
      const synthesis = await handle.db
        .selectFrom('tasks')
        .select('status')
        .where('session_id', '=', sessionId)
        .where('name', '=', SYNTHESIS_TASK_NAME)
        .executeTakeFirst();
      assert.equal(synthesis?.status, 'ready', body);
    }
  });

  test("of the orchestrator's adaptive session: the phase a gate decided fails it, saying why", async () => {
    for (const body of DAMAGED) {
      const sessionId = await planned(body, { strategy: 'adaptive' });
      await succeed(sessionId, { survey: 'surveyed' });
      const gate = await step(sessionId);
      assert.ok(
        gate !== null && !('error' in gate) && gate.readied === 1,
        `${body}: ${JSON.stringify(gate)}`,
      );
      const phase = {
        name: 'second',
        tasks: [{ name: 'build', role: 'engineer', instructions: 'Build', dependsOn: [] }],
      };
      await succeed(sessionId, {
        'orchestrator:phase-gate-1': JSON.stringify({ decision: 'continue', reason: 'more', phase }),
      });
      const next = await step(sessionId);
      assert.ok(next !== null && 'error' in next, `${body}: ${JSON.stringify(next)}`);
      assert.match(next.error, /^INVALID_PLAN: the session's latest plan \(version 1\) cannot be read/);
    }
  });

  test("of the orchestrator's session: an edited approval keeps it the orchestrator's", async () => {
    for (const body of DAMAGED) {
      const sessionId = await planned(body, { approval: 'required' });
      const approved = await approve(sessionId, edited);
      assert.equal(approved.planVersion, 2);
      const stored = await handle.db
        .selectFrom('plans')
        .select('body')
        .where('session_id', '=', sessionId)
        .where('version', '=', 2)
        .executeTakeFirstOrThrow();
      const plan = JSON.parse(stored.body) as { origin?: string; phases: PlanBody['phases'] };
      assert.equal(plan.origin, ORCHESTRATOR_PLAN_ORIGIN, body);
      assert.equal(plan.phases[0]?.tasks[0]?.instructions, 'Survey, better');
    }
  });

  test("of the orchestrator's session: a steering message is taken, as the orchestrator reads it", async () => {
    for (const body of DAMAGED) {
      const sessionId = await planned(body);
      const stored = await addSteeringMessage(handle.db, ACTOR.tenantId, sessionId, 'focus on costs');
      assert.equal(typeof stored.id, 'string', body);
    }
  });

  test('of a session submitted with its agents: a steering message is still refused', async () => {
    for (const body of DAMAGED) {
      const { session } = await engine.service.createSession(ACTOR, {
        objective: 'Mine',
        agents: [{ name: 'build', role: 'engineer', task: 'Build it' }],
      });
      await handle.db.updateTable('plans').set({ body }).where('session_id', '=', session.id).execute();
      const error = await addSteeringMessage(handle.db, ACTOR.tenantId, session.id, 'hello').catch(
        (e: unknown) => e,
      );
      assert.ok(error instanceof AppError, `${body}: ${String(error)}`);
      assert.equal(error.code, 'INVALID_STATE');
      assert.match(error.message, /has no orchestrator/);
    }
  });
});
