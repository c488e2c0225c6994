// Which agent each task of a plan edited at an adaptive phase gate gets, on both stores: a task
// that reuses an agent keeps it, a task's own agent that never worked follows its edit, a new task
// gets a new agent, and the agent of a removed task is dropped.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { approvePlan } from '../../src/engine/planner-approval-store.ts';
import { ORCHESTRATOR_PLAN_ORIGIN } from '../../src/engine/planner-continuation.ts';
import { listPlanVersions } from '../../src/engine/planner-plan-versions.ts';
import { IGNORE_DAMAGED_JSON, newSessionRow, newTaskRow } from '../../src/store/rows.ts';
import type { Database } from '../../src/store/schema.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';

const TENANT = 'default';
const rules = {
  isKnownRole: () => true,
  isKnownRunner: () => false,
  maxAgentsPerRole: 3,
  maxTasksPerPhase: 12,
};

/**
 * A session waiting at phase gate 1: `survey` and `sketch` ran in phase 0; the gate planned `refine`
 * (reusing agent `sketch`), `build` and `extra`, each of the last two with an agent of its own.
 */
async function seed(db: Kysely<Database>, sessionId: string): Promise<void> {
  const now = 1;
  await db
    .insertInto('sessions')
    .values(
      newSessionRow(
        {
          id: sessionId,
          tenant_id: TENANT,
          objective: 'gate',
          strategy: 'adaptive',
          status: 'awaiting_approval',
          metadata: '{}',
          started_at: now,
        },
        now,
      ),
    )
    .execute();
  const agent = (name: string, role: string) => ({
    id: `${sessionId}-agent-${name}`,
    tenant_id: TENANT,
    session_id: sessionId,
    name,
    role,
    runtime: 'llm',
    created_at: now,
  });
  await db
    .insertInto('agents')
    .values([
      agent('survey', 'researcher'),
      agent('sketch', 'architect'),
      agent('build', 'engineer'),
      agent('extra', 'qa'),
    ])
    .execute();
  const owner = { tenantId: TENANT, sessionId, maxAttempts: 1, now };
  const task = (
    name: string,
    role: string,
    agentName: string | null,
    phase: number,
    position: number,
    status: 'succeeded' | 'pending',
  ) =>
    newTaskRow(owner, {
      id: `${sessionId}-${name}`,
      kind: agentName === null ? 'plan' : 'agent',
      name,
      role,
      agent_id: agentName === null ? null : `${sessionId}-agent-${agentName}`,
      instructions: `Work on ${name}`,
      runner: null,
      phase,
      position,
      status,
    });
  await db
    .insertInto('tasks')
    .values([
      task('survey', 'researcher', 'survey', 0, 0, 'succeeded'),
      task('sketch', 'architect', 'sketch', 0, 1, 'succeeded'),
      task('orchestrator:phase-gate-1', 'orchestrator', null, 1, 2, 'succeeded'),
      task('refine', 'architect', 'sketch', 1, 3, 'pending'),
      task('build', 'engineer', 'build', 1, 4, 'pending'),
      task('extra', 'qa', 'extra', 1, 5, 'pending'),
    ])
    .execute();
  const dep = (from: string, to: string) => ({
    task_id: `${sessionId}-${from}`,
    depends_on_task_id: `${sessionId}-${to}`,
    session_id: sessionId,
    tenant_id: TENANT,
  });
  await db
    .insertInto('task_dependencies')
    .values([
      dep('refine', 'survey'),
      dep('refine', 'sketch'),
      dep('build', 'survey'),
      dep('build', 'sketch'),
      dep('build', 'refine'),
      dep('extra', 'survey'),
      dep('extra', 'sketch'),
    ])
    .execute();
  await db
    .insertInto('plans')
    .values({
      session_id: sessionId,
      version: 1,
      tenant_id: TENANT,
      body: JSON.stringify({ phases: [], origin: ORCHESTRATOR_PLAN_ORIGIN }),
      created_at: now,
    })
    .execute();
}

/** Phase 0 as it ran, and the gate's phase edited: `build` becomes a backend task, `extra` goes, `docs` comes. */
const editedPlan = {
  phases: [
    {
      name: 'explore',
      tasks: [
        { name: 'survey', role: 'researcher', instructions: 'Work on survey' },
        { name: 'sketch', role: 'architect', instructions: 'Work on sketch' },
      ],
    },
    {
      name: 'build',
      tasks: [
        { name: 'refine', role: 'architect', instructions: 'Work on refine' },
        {
          name: 'build',
          role: 'backend_engineer',
          instructions: 'Build the backend',
          depends_on: ['refine'],
        },
        { name: 'docs', role: 'documenter', instructions: 'Document it' },
      ],
    },
  ],
};

describe('agents of a plan edited at a phase gate', () => {
  for (const backend of STORE_BACKENDS) {
    test(`${backend.name}: reused agents stay, unworked own agents follow the edit, removed ones go`, async () => {
      const { handles, dispose } = await backend.open(1);
      try {
        const db = handles[0]!.db;
        const sessionId = `s-${backend.name}`;
        await seed(db, sessionId);
        const session = { id: sessionId, tenantId: TENANT };
        const approved = await db
          .transaction()
          .execute((trx) => approvePlan(trx, session, { editedPlan, rules, maxAttempts: 1 }, 2));
        assert.deepEqual([approved.planVersion, approved.readied], [2, 2]);

        const tasks = await db
          .selectFrom('tasks')
          .innerJoin('agents', 'agents.id', 'tasks.agent_id')
          .select([
            'tasks.name',
            'tasks.status',
            'agents.id as agent_id',
            'agents.name as agent',
            'agents.role',
          ])
          .where('tasks.session_id', '=', sessionId)
          .orderBy('tasks.position')
          .execute();
        assert.deepEqual(
          tasks.map((t) => [t.name, t.status, t.agent, t.role]),
          [
            ['survey', 'succeeded', 'survey', 'researcher'],
            ['sketch', 'succeeded', 'sketch', 'architect'],
            ['refine', 'ready', 'sketch', 'architect'],
            ['build', 'pending', 'build', 'backend_engineer'],
            ['docs', 'ready', 'docs', 'documenter'],
          ],
        );
        const agentOf = new Map(tasks.map((t) => [t.name, t.agent_id]));
        assert.equal(agentOf.get('refine'), `${sessionId}-agent-sketch`);
        assert.equal(
          agentOf.get('build'),
          `${sessionId}-agent-build`,
          'the own agent that never worked is kept',
        );
        const agents = await db
          .selectFrom('agents')
          .select('name')
          .where('session_id', '=', sessionId)
          .orderBy('name')
          .execute();
        assert.deepEqual(
          agents.map((a) => a.name),
          ['build', 'docs', 'sketch', 'survey'],
          'the agent of the removed task is dropped',
        );
        const deps = await db
          .selectFrom('task_dependencies as d')
          .innerJoin('tasks as t', 't.id', 'd.task_id')
          .innerJoin('tasks as on', 'on.id', 'd.depends_on_task_id')
          .select(['t.name as task', 'on.name as on'])
          .where('d.session_id', '=', sessionId)
          .execute();
        const depsOf = (name: string) =>
          deps
            .filter((d) => d.task === name)
            .map((d) => d.on)
            .sort();
        assert.deepEqual(depsOf('refine'), ['sketch', 'survey']);
        assert.deepEqual(depsOf('build'), ['refine', 'sketch', 'survey']);
        assert.deepEqual(depsOf('docs'), ['sketch', 'survey']);

        const versions = await listPlanVersions(db, TENANT, sessionId, IGNORE_DAMAGED_JSON);
        const latest = versions.at(-1)?.plan?.phases[1]?.tasks as Array<{ name: string; agent?: string }>;
        assert.deepEqual(
          latest.map((t) => [t.name, t.agent ?? null]),
          [
            ['refine', 'sketch'],
            ['build', null],
            ['docs', null],
          ],
        );
      } finally {
        await dispose();
      }
    });
  }
});
