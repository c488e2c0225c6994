// A session read in two parts, on the real application: GET /v1/sessions/:id?tasks=none is the
// detail without `tasks` (every other field the same; the default and `tasks=all` unchanged), GET
// /v1/sessions/:id/tasks?ids=… the tasks of those ids in plan order, each page with the session's
// `planVersion`; one `Task` schema for the detail's tasks and the pages' in the OpenAPI document; bad
// `ids` or `tasks`, another tenant's session. The store's id filter and page version on SQLite and
// PostgreSQL.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { toSessionOverview } from '../../src/domain/session-overview.ts';
import { createSessionDetailReader } from '../../src/engine/session-detail-cache.ts';
import { toSessionDto, toSessionOverviewDto } from '../../src/http/dto.ts';
import { IGNORE_DAMAGED_JSON, newSessionRow, newTaskRow } from '../../src/store/rows.ts';
import { listSessionTaskPage } from '../../src/store/session-task-pages.ts';
import { fetchOpenApiDocument } from '../fixtures/openapi-conformance.ts';
import { startProbeStack } from '../fixtures/security-probe.ts';
import { requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';
import { agentTaskRow, insertRunningSession } from '../fixtures/task-page-rows.ts';

interface Task {
  id: string;
  name: string;
  result: string | null;
  [field: string]: unknown;
}
interface Detail {
  id: string;
  planVersion: number;
  tasks: Task[];
  [field: string]: unknown;
}
interface TaskPage {
  items: Task[];
  nextCursor: string | null;
  planVersion: number;
}

describe('a session read without its tasks, and tasks by id', { timeout: 120_000 }, () => {
  test('tasks=none is the detail without tasks; ids read those tasks, in plan order', async (t) => {
    const server = await startTestServer({
      config: { runners: { words: { command: ['sh', '-c', 'echo "output of $MAOS_TASK"'] } } },
    });
    t.after(() => server.close());
    const agents = Array.from({ length: 6 }, (_, i) => ({
      name: `step${i}`,
      role: 'engineer',
      task: `Step ${i}`,
      runner: 'words',
      ...(i > 0 ? { depends_on: [`step${i - 1}`] } : {}),
    }));
    const created = await requestJson<Detail>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'read in parts', strategy: 'pipeline', agents, metadata: { team: 'a' } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    await waitForSession(server.url, id);
    const detail = (await requestJson<Detail>(`${server.url}/v1/sessions/${id}`)).body;
    assert.equal(detail.tasks.length, 6);
    assert.ok(detail.tasks.every((task) => task.result?.startsWith('output of')));

    // Without tasks: the detail's fields and values, in its order, without `tasks`.
    const overview = await requestJson<Record<string, unknown>>(`${server.url}/v1/sessions/${id}?tasks=none`);
    assert.equal(overview.status, 200);
    const { tasks: _tasks, ...rest } = detail;
    assert.deepEqual(overview.body, rest);
    assert.deepEqual(Object.keys(overview.body), Object.keys(rest));
    assert.ok(!('tasks' in overview.body));
    // `tasks=all` is the default; the detail (of a finished session, served from memory) is the same
    // bytes again after a read without tasks.
    const plain = await fetch(`${server.url}/v1/sessions/${id}`);
    const all = await fetch(`${server.url}/v1/sessions/${id}?tasks=all`);
    assert.equal(await all.text(), await plain.text());
    assert.deepEqual(JSON.parse(await (await fetch(`${server.url}/v1/sessions/${id}`)).text()), detail);
    for (const bad of ['tasks=some', 'tasks=', 'tasks=none&tasks=all', 'fields=none']) {
      const refused = await requestJson<{ code: string }>(`${server.url}/v1/sessions/${id}?${bad}`);
      assert.equal(refused.status, 400, bad);
      assert.equal(refused.body.code, 'VALIDATION_FAILED', bad);
    }

    // Tasks by id: those asked for, in plan order whatever the order asked, each as the detail has it,
    // an unknown id and a repeated one no error; ids in upper case name the same tasks.
    const [t0, , t2, , t4] = detail.tasks as [Task, Task, Task, Task, Task, Task];
    const ids = [t4.id, randomUUID(), t0.id.toUpperCase(), t2.id, t4.id].join(',');
    const page = await requestJson<TaskPage>(`${server.url}/v1/sessions/${id}/tasks?ids=${ids}`);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    assert.deepEqual(page.body.items, [t0, t2, t4]);
    assert.equal(page.body.nextCursor, null);
    assert.equal(page.body.planVersion, detail.planVersion);
    // Paged the same way as without ids.
    const first = await requestJson<TaskPage>(`${server.url}/v1/sessions/${id}/tasks?ids=${ids}&limit=2`);
    assert.deepEqual(first.body.items, [t0, t2]);
    assert.ok(first.body.nextCursor);
    const second = await requestJson<TaskPage>(
      `${server.url}/v1/sessions/${id}/tasks?ids=${ids}&limit=2&cursor=${first.body.nextCursor}`,
    );
    assert.deepEqual(second.body.items, [t4]);
    assert.equal(second.body.nextCursor, null);
    // Every page says the plan version, as the detail does.
    const every = await requestJson<TaskPage>(`${server.url}/v1/sessions/${id}/tasks`);
    assert.deepEqual(every.body.items, detail.tasks);
    assert.equal(every.body.planVersion, detail.planVersion);

    // Bad ids: not UUIDs, empty, separated otherwise, repeated as parameters, more than 100.
    const hundredAndOne = Array.from({ length: 101 }, () => randomUUID()).join(',');
    for (const bad of [
      'nope',
      '',
      `${t0.id};${t2.id}`,
      `${t0.id},`,
      `${t0.id}, ${t2.id}`,
      `${t0.id}&ids=${t2.id}`,
      hundredAndOne,
    ]) {
      const refused = await requestJson<{ code: string }>(
        `${server.url}/v1/sessions/${id}/tasks?ids=${encodeURI(bad)}`,
      );
      assert.equal(refused.status, 400, `ids=${bad.slice(0, 80)}`);
      assert.match(refused.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal(refused.body.code, 'VALIDATION_FAILED');
    }
    const hundred = Array.from({ length: 100 }, () => randomUUID()).join(',');
    const most = await requestJson<TaskPage>(`${server.url}/v1/sessions/${id}/tasks?ids=${hundred}`);
    assert.equal(most.status, 200);
    assert.deepEqual(most.body.items, []);

    // One Task schema: the detail's tasks and a page's items are the same component.
    const doc = (await fetchOpenApiDocument(server.url)) as unknown as {
      components: { schemas: Record<string, { properties: Record<string, unknown>; required?: string[] }> };
    };
    const schemas = doc.components.schemas;
    const itemsOf = (schema: unknown) => (schema as { items?: { $ref?: string } } | undefined)?.items?.$ref;
    assert.equal(itemsOf(schemas.Session?.properties.tasks), '#/components/schemas/Task');
    assert.equal(itemsOf(schemas.TaskPage?.properties.items), '#/components/schemas/Task');
    assert.ok(schemas.TaskPage?.required?.includes('planVersion'));
    assert.ok(!('tasks' in (schemas.SessionOverview?.properties ?? {})));
    assert.deepEqual(
      Object.keys(schemas.SessionOverview?.properties ?? {}),
      Object.keys(schemas.Session?.properties ?? {}).filter((name) => name !== 'tasks'),
    );
  });

  test('a task’s dependsOn is in plan order in the submit’s answer, the detail and the pages alike', async (t) => {
    const server = await startTestServer({
      config: { runners: { words: { command: ['sh', '-c', 'echo "output of $MAOS_TASK"'] } } },
    });
    t.after(() => server.close());
    // `last` names its dependencies in another order than the plan's.
    const agents = [
      ...['a', 'b', 'c', 'd'].map((name) => ({ name, role: 'engineer', task: name, runner: 'words' })),
      { name: 'last', role: 'engineer', task: 'last', runner: 'words', depends_on: ['d', 'b', 'c', 'a'] },
    ];
    const created = await requestJson<Detail>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'dependencies in order', agents },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    const inPlanOrder = ['a', 'b', 'c', 'd'];
    assert.deepEqual(created.body.tasks.at(-1)?.dependsOn, inPlanOrder, 'the submit’s answer');
    await waitForSession(server.url, id);
    const detail = (await requestJson<Detail>(`${server.url}/v1/sessions/${id}`)).body;
    const last = detail.tasks.at(-1)!;
    assert.deepEqual(last.dependsOn, inPlanOrder, 'the detail');
    const page = await requestJson<TaskPage>(`${server.url}/v1/sessions/${id}/tasks`);
    assert.deepEqual(page.body.items, detail.tasks, 'a page: the detail’s tasks');
    const byId = await requestJson<TaskPage>(`${server.url}/v1/sessions/${id}/tasks?ids=${last.id}`);
    assert.deepEqual(byId.body.items, [last], 'read by id: the detail’s task');
  });

  test('another tenant’s session is not found, without tasks or by ids', async (t) => {
    const stack = await startProbeStack(t);
    const base = stack.server.url;
    const developer = await stack.mint('tenant-overview-a', ['developer']);
    const other = await stack.mint('tenant-overview-b', ['admin']);
    const created = await fetch(`${base}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${developer}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        objective: 'tenants',
        agents: [{ name: 'only', role: 'engineer', task: 'x', runner: 'ok' }],
      }),
    });
    assert.equal(created.status, 201);
    const session = (await created.json()) as Detail;
    const taskId = session.tasks[0]?.id;
    for (const path of [
      `/v1/sessions/${session.id}?tasks=none`,
      `/v1/sessions/${session.id}/tasks?ids=${taskId}`,
    ]) {
      const mine = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${developer}` } });
      assert.equal(mine.status, 200, path);
      const theirs = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${other}` } });
      assert.equal(theirs.status, 404, path);
      assert.equal(((await theirs.json()) as { code: string }).code, 'SESSION_NOT_FOUND');
    }
    const missing = await fetch(`${base}/v1/sessions/${randomUUID()}?tasks=none`, {
      headers: { authorization: `Bearer ${developer}` },
    });
    assert.equal(missing.status, 404);
  });
});

const AT = Date.parse('2026-10-01T00:00:00Z');

for (const backend of STORE_BACKENDS) {
  describe(`session task pages by id (${backend.name})`, { timeout: 60_000 }, () => {
    test('ids narrow the page to the session’s tasks of those ids; the page says the plan version', async () => {
      const { handles, dispose } = await backend.open(1);
      try {
        const db = handles[0]!.db;
        await db.insertInto('tenants').values({ id: 'acme', name: 'acme', created_at: 0 }).execute();
        const sessionIds = [randomUUID(), randomUUID()];
        const taskIds = new Map<string, string[]>();
        for (const sessionId of sessionIds) {
          await insertRunningSession(db, sessionId, 'ids probe', AT);
          const rows = Array.from({ length: 6 }, (_, position) =>
            agentTaskRow(sessionId, position, { now: AT }),
          );
          await db.insertInto('tasks').values(rows).execute();
          taskIds.set(
            sessionId,
            rows.map((row) => row.id),
          );
        }
        const [mine, theirs] = sessionIds as [string, string];
        const own = taskIds.get(mine)!;
        const foreign = taskIds.get(theirs)!;
        const page = await listSessionTaskPage(db, 'acme', mine, {
          limit: 10,
          ids: [own[5]!, foreign[1]!, own[1]!, own[3]!],
        });
        assert.deepEqual(
          page.items.map((task) => task.name),
          ['t1', 't3', 't5'],
          'plan order; another session’s task is not on it',
        );
        assert.equal(page.planVersion, 1);
        const none = await listSessionTaskPage(db, 'acme', mine, { limit: 10, ids: [] });
        assert.deepEqual(none.items, []);

        // A re-plan bumps the version the next page says.
        await db.updateTable('sessions').set({ plan_version: 2 }).where('id', '=', mine).execute();
        const after = await listSessionTaskPage(db, 'acme', mine, { limit: 2 });
        assert.equal(after.planVersion, 2);
        assert.deepEqual(
          after.items.map((task) => task.name),
          ['t0', 't1'],
        );
      } finally {
        await dispose();
      }
    });

    test('a session without its tasks, read without their results, is the detail without tasks', async () => {
      const { handles, dispose } = await backend.open(1);
      try {
        const db = handles[0]!.db;
        await db.insertInto('tenants').values({ id: 'acme', name: 'acme', created_at: 0 }).execute();
        const sessionId = randomUUID();
        await db
          .insertInto('sessions')
          .values({
            ...newSessionRow(
              {
                id: sessionId,
                tenant_id: 'acme',
                objective: 'overview probe',
                strategy: 'adaptive',
                status: 'awaiting_approval',
                metadata: '{}',
                started_at: AT,
              },
              AT,
            ),
            input_tokens: 60,
            output_tokens: 24,
          })
          .execute();
        const plan = { rationale: 'r', phases: [{ name: 'one', tasks: [] }] };
        await db
          .insertInto('plans')
          .values({
            session_id: sessionId,
            version: 1,
            tenant_id: 'acme',
            body: JSON.stringify(plan),
            created_at: AT,
          })
          .execute();
        // Agents inserted in an order other than that of their first task; one without a task.
        const agentIds = [randomUUID(), randomUUID(), randomUUID()];
        await db
          .insertInto('agents')
          .values(
            agentIds.map((id, i) => ({
              id,
              tenant_id: 'acme',
              session_id: sessionId,
              name: `agent${i}`,
              role: 'engineer',
              runtime: 'llm',
              created_at: AT,
            })),
          )
          .execute();
        // Plan order: agent 2's task first; an orchestrator task (no agent); phase 1 and 2 pending.
        const specs = [
          { agent: agentIds[2]!, phase: 0, status: 'succeeded', tokens: 10 },
          { agent: null, phase: 0, status: 'succeeded', tokens: 7 },
          { agent: agentIds[0]!, phase: 0, status: 'failed', tokens: 3 },
          { agent: agentIds[2]!, phase: 1, status: 'succeeded', tokens: 5 },
          { agent: agentIds[0]!, phase: 2, status: 'pending', tokens: 0 },
          { agent: agentIds[2]!, phase: 1, status: 'pending', tokens: 0 },
        ];
        await db
          .insertInto('tasks')
          .values(
            specs.map((spec, position) => ({
              ...newTaskRow(
                { tenantId: 'acme', sessionId, maxAttempts: 1, now: AT },
                {
                  id: randomUUID(),
                  kind: spec.agent === null ? 'plan' : 'agent',
                  name: `t${position}`,
                  role: 'engineer',
                  agent_id: spec.agent,
                  instructions: 'x',
                  runner: null,
                  phase: spec.phase,
                  position,
                  status: spec.status,
                },
              ),
              result: spec.status === 'succeeded' ? 'r'.repeat(5000) : null,
              input_tokens: spec.tokens,
              output_tokens: spec.tokens * 2,
              cache_read_tokens: spec.tokens,
              cost_usd: spec.tokens / 100,
            })),
          )
          .execute();

        const reader = createSessionDetailReader(IGNORE_DAMAGED_JSON);
        const detail = await reader.read(db, 'acme', sessionId);
        const overview = await reader.readOverview(db, 'acme', sessionId);
        assert.deepEqual(overview, toSessionOverview(detail));
        assert.equal(overview.pendingPhase, 1);
        assert.deepEqual(
          overview.agents.map((agent) => [agent.name, agent.usage.inputTokens]),
          [
            ['agent2', 15],
            ['agent0', 3],
            ['agent1', 0],
          ],
        );
        // What the API answers: the detail's fields without `tasks`, the phase waiting for approval.
        const { tasks: _tasks, ...expected } = toSessionDto(detail);
        assert.deepEqual(toSessionOverviewDto(overview), expected);
        assert.equal(toSessionOverviewDto(overview).approval.pendingPhase, 1);

        // Another tenant's id: not found, as for the detail.
        await assert.rejects(reader.readOverview(db, 'other', sessionId), { code: 'SESSION_NOT_FOUND' });
      } finally {
        await dispose();
      }
    });
  });
}
