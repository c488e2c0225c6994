// Steering and approval routes through the real HTTP server, engine and SQLite store.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createSessionPlanRoutesPlugin } from '../../src/http/routes/session-plans.ts';
import { createSessionSteeringRoutesPlugin } from '../../src/http/routes/session-steering.ts';
import { buildHttpServer } from '../../src/http/server.ts';
import { createEngineSteering } from '../../src/mcp/engine-steering.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';
import { markPlanOrchestrated } from '../fixtures/orchestrated-plan.ts';

describe('steering and approval routes', { timeout: 30_000 }, () => {
  let h: Harness;
  let app: FastifyInstance;
  const changed: string[] = [];
  before(async () => {
    h = await createHarness({ runners: { ok: { command: ['true'] } }, start: false });
    app = await buildHttpServer({
      config: { http: { bodyLimitBytes: 65_536, maxPageSize: 50, sseKeepAliveSeconds: 15 } },
      service: h.engine.service,
      logger: createLogger({ level: 'silent' }),
      readiness: async () => ({ database: { ok: true, detail: 'ok' } }),
      listRoles: () => [],
      plugins: [
        createSessionPlanRoutesPlugin({ db: h.handle.db, reportDamagedJson: h.engine.reportDamagedJson }),
        createSessionSteeringRoutesPlugin(
          createEngineSteering({
            db: h.handle.db,
            planRules: async () => ({
              isKnownRole: () => true,
              isKnownRunner: (r) => r === 'ok',
              maxAgentsPerRole: 3,
              maxTasksPerPhase: 12,
            }),
            maxAttempts: 1,
            onChanged: (id) => changed.push(id),
          }),
        ),
      ],
    });
  });
  after(async () => {
    await app.close();
    await h.close();
  });

  async function awaitingSession(
    agents: Array<{ name: string; role: string; task: string; runner: string; depends_on?: string[] }> = [
      { name: 'build', role: 'engineer', task: 'Build', runner: 'ok' },
    ],
  ): Promise<string> {
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: 'o',
      ...(agents.some((agent) => agent.depends_on) ? { strategy: 'pipeline' as const } : {}),
      agents,
    });
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
    return session.id;
  }

  test('a steering message is stored for the orchestrator', async () => {
    const id = await awaitingSession();
    await markPlanOrchestrated(h.handle.db, id);
    const response = await app.inject({
      method: 'POST',
      url: `/v1/sessions/${id}/messages`,
      payload: { message: 'Prefer PostgreSQL' },
    });
    assert.equal(response.statusCode, 202, response.body);
    const rows = await h.handle.db.selectFrom('messages').selectAll().where('session_id', '=', id).execute();
    assert.deepEqual(
      rows.map((r) => [r.body, r.from_agent_id, r.to_agent_id]),
      [['Prefer PostgreSQL', null, null]],
    );
  });

  test('a message is limited to 4000 characters as the API document counts them: an emoji is one', async () => {
    const id = await awaitingSession();
    await markPlanOrchestrated(h.handle.db, id);
    const send = (message: string) =>
      app.inject({ method: 'POST', url: `/v1/sessions/${id}/messages`, payload: { message } });
    const longest = await send('🎉'.repeat(4000));
    assert.equal(longest.statusCode, 202, longest.body);
    const tooLong = await send('🎉'.repeat(4001));
    assert.equal(tooLong.statusCode, 400);
    assert.equal(tooLong.json().code, 'VALIDATION_FAILED');
  });

  test('a message after the deadline, before the sweep ended the session, is refused: no gate would read it', async () => {
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: 'o',
      agents: [{ name: 'build', role: 'engineer', task: 'Build', runner: 'ok' }],
      budget: { deadlineSeconds: 60 },
    });
    await markPlanOrchestrated(h.handle.db, session.id);
    // Submitted two minutes ago: its deadline passed; the engine here runs no sweep.
    await h.handle.db
      .updateTable('sessions')
      .set({ created_at: Date.now() - 120_000 })
      .where('id', '=', session.id)
      .execute();
    const response = await app.inject({
      method: 'POST',
      url: `/v1/sessions/${session.id}/messages`,
      payload: { message: 'Prefer PostgreSQL' },
    });
    assert.equal(response.statusCode, 409, response.body);
    assert.equal(response.json().code, 'INVALID_STATE');
    assert.equal(response.json().details.code, 'BUDGET_EXCEEDED');
    const rows = await h.handle.db
      .selectFrom('messages')
      .select('id')
      .where('session_id', '=', session.id)
      .execute();
    assert.equal(rows.length, 0);
  });

  test('steering is refused where no orchestrator would read it: given agents, synthesis begun', async () => {
    const given = await awaitingSession();
    const refused = await app.inject({
      method: 'POST',
      url: `/v1/sessions/${given}/messages`,
      payload: { message: 'Prefer PostgreSQL' },
    });
    assert.equal(refused.statusCode, 409, refused.body);
    assert.equal(refused.json().code, 'INVALID_STATE');
    assert.match(refused.json().detail, /runs the agents it was submitted with/);

    const writing = await awaitingSession();
    await markPlanOrchestrated(h.handle.db, writing);
    // The synthesis has started: its prompt, the last the orchestrator reads, is built.
    await h.handle.db
      .updateTable('tasks')
      .set({ kind: 'synthesize', status: 'running' })
      .where('session_id', '=', writing)
      .execute();
    const late = await app.inject({
      method: 'POST',
      url: `/v1/sessions/${writing}/messages`,
      payload: { message: 'Prefer PostgreSQL' },
    });
    assert.equal(late.statusCode, 409, late.body);
    assert.match(late.json().detail, /already writing the final answer/);
    const stored = await h.handle.db
      .selectFrom('messages')
      .select('id')
      .where('session_id', 'in', [given, writing])
      .execute();
    assert.deepEqual(stored, []);
  });

  test('approve with an edited plan starts the session; a second approval is 409', async () => {
    const id = await awaitingSession();
    const plan = {
      phases: [
        {
          name: 'main',
          tasks: [
            { name: 'build', role: 'engineer', instructions: 'Build', runner: 'ok' },
            { name: 'test', role: 'tester', instructions: 'Test', runner: 'ok', depends_on: ['build'] },
          ],
        },
      ],
    };
    const response = await app.inject({
      method: 'POST',
      url: `/v1/sessions/${id}/approve`,
      payload: { plan },
    });
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual(response.json(), { planVersion: 2, readied: 1, renamedTasks: {} });
    assert.ok(changed.includes(id));
    const detail = await h.engine.service.getSession(ACTOR, id);
    assert.equal(detail.status, 'running');
    assert.deepEqual(
      detail.tasks.map((t) => [t.name, t.status]),
      [
        ['build', 'ready'],
        ['test', 'pending'],
      ],
    );
    const again = await app.inject({ method: 'POST', url: `/v1/sessions/${id}/approve` });
    assert.equal(again.statusCode, 409);
    assert.equal((again.json() as { code: string }).code, 'INVALID_STATE');
  });

  /** The session's plan as GET /v1/sessions/:id shows it. */
  async function planAsShown(id: string) {
    const shown = await app.inject({ method: 'GET', url: `/v1/sessions/${id}` });
    assert.equal(shown.statusCode, 200, shown.body);
    return (
      shown.json() as {
        plan: { phases: Array<{ name: string; tasks: Array<Record<string, unknown> & { name: string }> }> };
      }
    ).plan;
  }

  async function planVersions(id: string) {
    const listed = await app.inject({ method: 'GET', url: `/v1/sessions/${id}/plans` });
    assert.equal(listed.statusCode, 200, listed.body);
    return (listed.json() as { items: Array<{ version: number; diff: unknown }> }).items;
  }

  const twoTasks = [
    { name: 'build', role: 'engineer', task: 'Build', runner: 'ok' },
    { name: 'test', role: 'qa', task: 'Test', runner: 'ok', depends_on: ['build'] },
  ];

  test('the plan as the session shows it (dependsOn), edited, is approved as the new version', async () => {
    const id = await awaitingSession(twoTasks);
    const plan = await planAsShown(id);
    assert.deepEqual(plan.phases[0]?.tasks[1]?.dependsOn, ['build']);
    const test = plan.phases[0]?.tasks[1];
    if (test) test.instructions = 'Test it all';
    const response = await app.inject({
      method: 'POST',
      url: `/v1/sessions/${id}/approve`,
      payload: { plan },
    });
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual(response.json(), { planVersion: 2, readied: 1, renamedTasks: {} });
    const detail = await h.engine.service.getSession(ACTOR, id);
    assert.deepEqual(
      detail.tasks.map((t) => [t.name, t.instructions, t.dependsOn]),
      [
        ['build', 'Build', []],
        ['test', 'Test it all', ['build']],
      ],
    );
  });

  test('a task giving dependsOn and depends_on with different tasks is 400 INVALID_PLAN', async () => {
    const id = await awaitingSession(twoTasks);
    const plan = await planAsShown(id);
    const test = plan.phases[0]?.tasks[1];
    if (test) test.depends_on = [];
    const response = await app.inject({
      method: 'POST',
      url: `/v1/sessions/${id}/approve`,
      payload: { plan },
    });
    assert.equal(response.statusCode, 400, response.body);
    const problem = response.json() as { code: string; detail: string };
    assert.equal(problem.code, 'INVALID_PLAN');
    assert.match(
      problem.detail,
      /plan\.phases\.0\.tasks\.1: dependsOn and depends_on name different tasks: give the dependencies once, as dependsOn/,
    );
    assert.equal((await h.engine.service.getSession(ACTOR, id)).status, 'awaiting_approval');
  });

  test('the waiting plan sent back unchanged is a plain approval: no new plan version', async () => {
    const id = await awaitingSession(twoTasks);
    const plan = await planAsShown(id);
    const response = await app.inject({
      method: 'POST',
      url: `/v1/sessions/${id}/approve`,
      payload: { plan },
    });
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual(response.json(), { planVersion: 1, readied: 1, renamedTasks: {} });
    assert.deepEqual(
      (await planVersions(id)).map((item) => item.version),
      [1],
    );
    const detail = await h.engine.service.getSession(ACTOR, id);
    assert.equal(detail.planVersion, 1);
    assert.deepEqual(
      detail.tasks.map((t) => [t.name, t.status]),
      [
        ['build', 'ready'],
        ['test', 'pending'],
      ],
    );
  });

  test('a plan submitted with an agent named orchestrator:… is approved as read', async () => {
    // Submitted agents may take the prefix an edit may not give a new task.
    const id = await awaitingSession([
      { name: 'orchestrator:build', role: 'engineer', task: 'Build', runner: 'ok' },
      { name: 'test', role: 'qa', task: 'Test', runner: 'ok', depends_on: ['orchestrator:build'] },
    ]);
    const plan = await planAsShown(id);
    const response = await app.inject({
      method: 'POST',
      url: `/v1/sessions/${id}/approve`,
      payload: { plan },
    });
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual(response.json(), { planVersion: 1, readied: 1, renamedTasks: {} });
  });

  test('an invalid edited plan is 400 with the problems', async () => {
    const id = await awaitingSession();
    const response = await app.inject({
      method: 'POST',
      url: `/v1/sessions/${id}/approve`,
      payload: {
        plan: {
          phases: [{ name: 'p', tasks: [{ name: 'a', role: 'qa', instructions: 'x', runner: 'nope' }] }],
        },
      },
    });
    assert.equal(response.statusCode, 400);
    assert.equal((response.json() as { code: string }).code, 'INVALID_PLAN');
    assert.match(response.body, /runner \\"nope\\" is not declared/);
  });

  test('reject ends the session; steering it afterwards is 409; a missing reason is 400', async () => {
    const id = await awaitingSession();
    assert.equal(
      (await app.inject({ method: 'POST', url: `/v1/sessions/${id}/reject`, payload: {} })).statusCode,
      400,
    );
    const response = await app.inject({
      method: 'POST',
      url: `/v1/sessions/${id}/reject`,
      payload: { reason: 'Not now' },
    });
    assert.equal(response.statusCode, 204, response.body);
    const detail = await h.engine.service.getSession(ACTOR, id);
    assert.deepEqual([detail.status, detail.error], ['failed', 'Plan rejected: Not now']);
    const late = await app.inject({
      method: 'POST',
      url: `/v1/sessions/${id}/messages`,
      payload: { message: 'hello' },
    });
    assert.equal(late.statusCode, 409);
  });
});
