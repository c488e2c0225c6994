// The continuation of orchestrator-planned sessions on a real SQLite store: the first plan from the
// planning task, phase gates, the phases they decide (agent reuse, plan versions), the phase limit,
// and the synthesis as the only sink.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { advanceSession } from '../../src/domain/advance.ts';
import type { PlanBody } from '../../src/domain/types.ts';
import {
  type Continuation,
  INITIAL_PLAN_TASK_NAME,
  SYNTHESIS_TASK_NAME,
} from '../../src/engine/planner-continuation.ts';
import { listPlanVersions } from '../../src/engine/planner-plan-versions.ts';
import { IGNORE_DAMAGED_JSON } from '../../src/store/rows.ts';
import { loadSessionGraphs, loadTaskOutputs } from '../../src/store/task-graph.ts';
import { ACTOR } from '../fixtures/engine-harness.ts';
import { useOrchestratedEngine } from '../fixtures/orchestrated-plan.ts';

const firstPhase: PlanBody = {
  phases: [
    {
      name: 'first',
      tasks: [
        { name: 'survey', role: 'researcher', instructions: 'Survey', dependsOn: [] },
        { name: 'sketch', role: 'architect', instructions: 'Sketch', dependsOn: [] },
      ],
    },
  ],
};

describe('continuation of orchestrator-planned sessions', () => {
  // No worker runs the planning task here: `plan` stores its result as the planner would.
  const orchestrated = useOrchestratedEngine(firstPhase, { maxAttempts: 2 });
  const { succeed, plan } = orchestrated;

  async function step(sessionId: string, maxPhases = 3): Promise<Continuation | null> {
    const next = await orchestrated.step(sessionId, maxPhases);
    assert.ok(next === null || !('error' in next), JSON.stringify(next));
    return next;
  }

  async function tasksOf(sessionId: string) {
    return orchestrated.db
      .selectFrom('tasks')
      .selectAll()
      .where('session_id', '=', sessionId)
      .orderBy('position')
      .execute();
  }

  test("a session without agents is stored planning with its planning task; the task's plan becomes version 1", async () => {
    const { session } = await orchestrated.engine.service.createSession(ACTOR, { objective: 'Plan me' });
    assert.equal(session.status, 'planning');
    assert.equal(session.plan, null);
    assert.equal(session.planVersion, 0);
    assert.equal(session.startedAt, null);
    assert.deepEqual(
      session.tasks.map((t) => [t.kind, t.name, t.role, t.phase, t.status]),
      [['plan', INITIAL_PLAN_TASK_NAME, 'orchestrator', 0, 'ready']],
    );
    assert.deepEqual(
      await listPlanVersions(orchestrated.db, ACTOR.tenantId, session.id, IGNORE_DAMAGED_JSON),
      [],
    );

    await plan(session.id);
    const detail = await orchestrated.engine.service.getSession(ACTOR, session.id);
    assert.equal(detail.status, 'running');
    assert.equal(detail.planVersion, 1);
    assert.notEqual(detail.startedAt, null);
    assert.deepEqual(
      detail.plan?.phases.map((phase) => phase.tasks.map((t) => t.name)),
      [['survey', 'sketch']],
    );
    assert.deepEqual(
      detail.tasks.map((t) => [t.name, t.status]),
      [
        [INITIAL_PLAN_TASK_NAME, 'succeeded'],
        ['survey', 'ready'],
        ['sketch', 'ready'],
      ],
    );
    assert.deepEqual(
      detail.agents.map((a) => a.name),
      ['survey', 'sketch'],
    );
    const versions = await listPlanVersions(orchestrated.db, ACTOR.tenantId, session.id, IGNORE_DAMAGED_JSON);
    assert.deepEqual(
      versions.map((v) => [v.version, v.diff]),
      [[1, null]],
    );
  });

  test('adaptive: gate → next phase with agent reuse → gate → synthesis, which alone gives the result', async () => {
    const { session } = await orchestrated.engine.service.createSession(ACTOR, {
      objective: 'Adaptive',
      strategy: 'adaptive',
    });
    await plan(session.id);
    await succeed(session.id, { survey: 'S', sketch: 'K' });

    const gate1 = await step(session.id);
    assert.equal(gate1?.readied, 1);
    let tasks = await tasksOf(session.id);
    const gateRow = tasks.at(-1);
    assert.deepEqual(
      [gateRow?.kind, gateRow?.name, gateRow?.role, gateRow?.phase, gateRow?.status],
      ['plan', 'orchestrator:phase-gate-1', 'orchestrator', 1, 'ready'],
    );

    const nextPhase = {
      name: 'second',
      tasks: [
        {
          name: 'refine',
          role: 'architect',
          instructions: 'Refine',
          dependsOn: ['survey', 'sketch'],
          agent: 'sketch',
        },
        { name: 'build', role: 'engineer', instructions: 'Build', dependsOn: ['survey', 'sketch', 'refine'] },
      ],
    };
    await succeed(session.id, {
      'orchestrator:phase-gate-1': JSON.stringify({ decision: 'continue', reason: 'more', phase: nextPhase }),
    });
    const phase = await step(session.id);
    assert.equal(phase?.readied, 1, 'refine is ready; build waits for refine');
    tasks = await tasksOf(session.id);
    const byName = new Map(tasks.map((t) => [t.name, t]));
    assert.equal(
      byName.get('refine')?.agent_id,
      byName.get('sketch')?.agent_id,
      'the sketch agent is reused',
    );
    assert.notEqual(byName.get('build')?.agent_id, null);
    assert.equal(byName.get('build')?.status, 'pending');
    const versions = await listPlanVersions(orchestrated.db, ACTOR.tenantId, session.id, IGNORE_DAMAGED_JSON);
    assert.deepEqual(versions.at(-1)?.diff?.added, ['refine', 'build']);

    await succeed(session.id, { refine: 'R', build: 'B' });
    const gate2 = await step(session.id);
    assert.equal(gate2?.readied, 1);
    assert.equal((await tasksOf(session.id)).at(-1)?.name, 'orchestrator:phase-gate-2');

    await succeed(session.id, {
      'orchestrator:phase-gate-2': JSON.stringify({ decision: 'complete', reason: 'done' }),
    });
    const synthesis = await step(session.id);
    assert.equal(synthesis?.readied, 1);
    tasks = await tasksOf(session.id);
    assert.equal(tasks.at(-1)?.name, SYNTHESIS_TASK_NAME);
    assert.equal(tasks.at(-1)?.kind, 'synthesize');

    await succeed(session.id, { [SYNTHESIS_TASK_NAME]: 'The final answer' });
    assert.equal(await step(session.id), null, 'after the synthesis the session completes');
    // As the engine decides an ending session: the graph's states with the tasks' outputs.
    const outputs = await loadTaskOutputs(orchestrated.db, session.id);
    const graph = ((await loadSessionGraphs(orchestrated.db, [session.id])).get(session.id) ?? []).map(
      (task) => ({
        ...task,
        ...outputs.get(task.id),
      }),
    );
    assert.deepEqual(advanceSession(graph).outcome, { status: 'completed', result: 'The final answer' });
  });

  test('the phase limit sends an adaptive session to synthesis instead of another gate', async () => {
    const { session } = await orchestrated.engine.service.createSession(ACTOR, {
      objective: 'Short',
      strategy: 'adaptive',
    });
    await plan(session.id);
    await succeed(session.id, { survey: 'S', sketch: 'K' });
    await step(session.id, 1);
    assert.equal((await tasksOf(session.id)).at(-1)?.name, SYNTHESIS_TASK_NAME);
  });

  test('a planned non-adaptive session goes straight to synthesis; explicit sessions complete as usual', async () => {
    const { session } = await orchestrated.engine.service.createSession(ACTOR, { objective: 'Planned' });
    await plan(session.id);
    await succeed(session.id, { survey: 'S', sketch: 'K' });
    await step(session.id);
    const tasks = await tasksOf(session.id);
    assert.equal(tasks.at(-1)?.kind, 'synthesize');
    const deps = await orchestrated.db
      .selectFrom('task_dependencies')
      .select('depends_on_task_id')
      .where('task_id', '=', tasks.at(-1)?.id ?? '')
      .execute();
    assert.equal(deps.length, 3, 'the agent tasks and the planning task');

    const explicit = await orchestrated.engine.service.createSession(ACTOR, {
      objective: 'Explicit',
      agents: [{ role: 'qa', task: 'Check' }],
    });
    await succeed(explicit.session.id, { 'qa-1': 'ok' });
    assert.equal(await step(explicit.session.id), null);
  });
});
