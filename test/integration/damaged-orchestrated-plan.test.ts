// A session whose latest stored plan cannot be read (a hand edit of `plans.body` gone wrong). It is
// approved with an edited plan, not answered a 500: JSON whose phases hold no tasks passed as a plan
// and the approval's walk of the waiting plan's tasks threw a TypeError. An orchestrator-planned one
// is still the orchestrator's: read as absent, its plan no longer said so, and the session completed
// as one of its own agents would (no synthesis; the phase a gate had decided dropped), an edited
// approval stored a plan without the orchestrator's mark (the same afterwards), and a steering
// message was refused as for a session with no orchestrator.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PlanBody } from '../../src/domain/types.ts';
import { approvePlan } from '../../src/engine/planner-approval-store.ts';
import { ORCHESTRATOR_PLAN_ORIGIN, SYNTHESIS_TASK_NAME } from '../../src/engine/planner-continuation.ts';
import { addSteeringMessage } from '../../src/engine/planner-steering.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { ACTOR } from '../fixtures/engine-harness.ts';
import { useOrchestratedEngine } from '../fixtures/orchestrated-plan.ts';

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
  const orchestrated = useOrchestratedEngine(firstPhase, { maxAttempts: 1 });
  const { succeed, step } = orchestrated;

  /** A session the orchestrator planned (its first plan applied), its plan then damaged. */
  async function planned(body: string, input: { approval?: 'required'; strategy?: 'adaptive' } = {}) {
    const { session } = await orchestrated.engine.service.createSession(ACTOR, {
      objective: 'Plan me',
      ...input,
    });
    await orchestrated.plan(session.id);
    await orchestrated.db.updateTable('plans').set({ body }).where('session_id', '=', session.id).execute();
    return session.id;
  }

  const approve = (sessionId: string, editedPlan?: unknown) =>
    orchestrated.db
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
      const { session } = await orchestrated.engine.service.createSession(ACTOR, {
        objective: 'Mine',
        approval: 'required',
        agents: [{ name: 'survey', role: 'researcher', task: 'Survey' }],
      });
      await orchestrated.db.updateTable('plans').set({ body }).where('session_id', '=', session.id).execute();
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
      const synthesis = await orchestrated.db
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
      const stored = await orchestrated.db
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
      const stored = await addSteeringMessage(orchestrated.db, ACTOR.tenantId, sessionId, 'focus on costs');
      assert.equal(typeof stored.id, 'string', body);
    }
  });

  test('of a session submitted with its agents: a steering message is still refused', async () => {
    for (const body of DAMAGED) {
      const { session } = await orchestrated.engine.service.createSession(ACTOR, {
        objective: 'Mine',
        agents: [{ name: 'build', role: 'engineer', task: 'Build it' }],
      });
      await orchestrated.db.updateTable('plans').set({ body }).where('session_id', '=', session.id).execute();
      const error = await addSteeringMessage(orchestrated.db, ACTOR.tenantId, session.id, 'hello').catch(
        (e: unknown) => e,
      );
      assert.ok(error instanceof AppError, `${body}: ${String(error)}`);
      assert.equal(error.code, 'INVALID_STATE');
      assert.match(error.message, /has no orchestrator/);
    }
  });
});
