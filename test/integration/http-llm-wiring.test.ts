// The composition root with an LLM provider configured: an objective-only session submitted over
// HTTP is planned and run by LLM agents (scripted LLM server), and custom roles can be added.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LlmDb } from '../../src/agents/providers/llm-tables.ts';
import { type RecordedLlmRequest, startLlmServer } from '../fixtures/llm-server.ts';
import { requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const plan = {
  rationale: 'Design, then review.',
  phases: [
    {
      name: 'design',
      tasks: [
        {
          name: 'design',
          role: 'architect',
          instructions: 'Design it',
          depends_on: [],
          deliverables: [],
          agent: null,
        },
      ],
    },
    {
      name: 'check',
      tasks: [
        {
          name: 'review',
          role: 'reviewer',
          instructions: 'Review it',
          depends_on: ['design'],
          deliverables: [],
          agent: null,
        },
      ],
    },
  ],
};

test('objective-only session over HTTP runs through the configured LLM stack; custom roles work', async (t) => {
  const llm = await startLlmServer({ apiKey: 'k' });
  t.after(() => llm.close());
  llm.setHandler((request: RecordedLlmRequest) => {
    if (request.body.response_format !== undefined) return { object: plan };
    const name = /Your task \(([^)]+)\)/.exec(request.promptText)?.[1] ?? 'unknown';
    return { text: `output of ${name}`, usage: { inputTokens: 10, outputTokens: 5 } };
  });
  const server = await startTestServer({
    config: {
      providers: {
        local: { type: 'openai-compatible', baseURL: llm.openaiBaseURL, model: 'local-model', apiKey: 'k' },
      },
      llm: { retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 } },
    },
  });
  t.after(() => server.close());

  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'Design and review a blog API' },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const session = await waitForSession<{
    status: string;
    error: string | null;
    result: string | null;
    tasks: Array<{ name: string }>;
  }>(server.url, created.body.id);
  assert.equal(session.status, 'completed', session.error ?? '');
  assert.deepEqual(
    session.tasks.map((task) => task.name).filter((name) => name === 'design' || name === 'review'),
    ['design', 'review'],
  );

  const role = {
    name: 'data_engineer',
    description: 'Builds data pipelines.',
    capabilities: ['etl', 'sql'],
    instructions: 'You build reliable data pipelines.',
  };
  const added = await requestJson<{ name: string }>(`${server.url}/v1/roles`, { method: 'POST', body: role });
  assert.ok(added.status === 201 || added.status === 200, JSON.stringify(added.body));
  const roles = await requestJson<{ items: Array<{ name: string; builtIn: boolean }> }>(
    `${server.url}/v1/roles`,
  );
  assert.deepEqual(
    roles.body.items.find((item) => item.name === 'data_engineer'),
    { name: 'data_engineer', description: role.description, capabilities: role.capabilities, builtIn: false },
  );
  assert.ok(roles.body.items.some((item) => item.name === 'architect' && item.builtIn));
});

test('POST with only an objective answers 201 `planning` before the orchestrator has answered', async (t) => {
  const llm = await startLlmServer({ apiKey: 'k' });
  t.after(() => llm.close());
  // The plan call waits until the test has seen the POST's answer.
  let releasePlan: () => void = () => {};
  const planReleased = new Promise<void>((resolve) => {
    releasePlan = resolve;
  });
  let planAnswered = false;
  llm.setHandler(async (request: RecordedLlmRequest) => {
    if (request.body.response_format !== undefined) {
      await planReleased;
      planAnswered = true;
      return { object: plan };
    }
    const name = /Your task \(([^)]+)\)/.exec(request.promptText)?.[1] ?? 'unknown';
    return { text: `output of ${name}` };
  });
  const server = await startTestServer({
    config: {
      providers: {
        local: { type: 'openai-compatible', baseURL: llm.openaiBaseURL, model: 'local-model', apiKey: 'k' },
      },
      llm: { retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 } },
    },
  });
  t.after(async () => {
    releasePlan();
    await server.close();
  });

  interface Created {
    id: string;
    status: string;
    plan: unknown;
    planVersion: number;
    tasks: Array<{ name: string; kind: string }>;
  }
  const body = { objective: 'Design and review a blog API' };
  const created = await requestJson<Created>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body,
    headers: { 'idempotency-key': 'plan-later-1' },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal(planAnswered, false);
  assert.equal(created.body.status, 'planning');
  assert.equal(created.body.plan, null);
  assert.equal(created.body.planVersion, 0);
  assert.deepEqual(
    created.body.tasks.map((task) => [task.kind, task.name]),
    [['plan', 'orchestrator:plan']],
  );
  const replay = await requestJson<Created>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body,
    headers: { 'idempotency-key': 'plan-later-1' },
  });
  assert.equal(replay.status, 200, JSON.stringify(replay.body));
  assert.equal(replay.body.id, created.body.id);
  const noPlans = await requestJson<{ items: unknown[] }>(
    `${server.url}/v1/sessions/${created.body.id}/plans`,
  );
  assert.deepEqual(noPlans.body.items, []);

  releasePlan();
  const done = await waitForSession<{ status: string; error: string | null; planVersion: number }>(
    server.url,
    created.body.id,
  );
  assert.equal(done.status, 'completed', done.error ?? '');
  assert.equal(planAnswered, true);
  assert.equal(done.planVersion, 1);
  const plans = await requestJson<{ items: Array<{ version: number }> }>(
    `${server.url}/v1/sessions/${created.body.id}/plans`,
  );
  assert.deepEqual(
    plans.body.items.map((item) => item.version),
    [1],
  );
});

test('strategies that contradict who plans are refused: adaptive with agents, parallel or sequential without', async (t) => {
  const llm = await startLlmServer();
  t.after(() => llm.close());
  llm.setHandler(() => ({ object: plan }));
  const server = await startTestServer({
    config: { providers: { local: { type: 'openai-compatible', baseURL: llm.openaiBaseURL, model: 'm' } } },
  });
  t.after(() => server.close());
  const refused = await requestJson<{ code: string; detail: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'x', strategy: 'adaptive', agents: [{ role: 'engineer', task: 'mine' }] },
  });
  assert.equal(refused.status, 400, JSON.stringify(refused.body));
  assert.equal(refused.body.code, 'VALIDATION_FAILED');
  assert.match(refused.body.detail, /adaptive .* takes no agents/);
  const listed = await requestJson<{ items: unknown[] }>(`${server.url}/v1/sessions`);
  assert.deepEqual(listed.body.items, []);
  assert.equal(llm.requests.length, 0);
  // parallel and sequential order given agents: without any, the orchestrator orders its plan.
  for (const strategy of ['parallel', 'sequential']) {
    const unordered = await requestJson<{ code: string; detail: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'x', strategy },
    });
    assert.equal(unordered.status, 400, JSON.stringify(unordered.body));
    assert.equal(unordered.body.code, 'VALIDATION_FAILED');
    assert.match(unordered.body.detail, new RegExp(`Strategy ${strategy} orders the agents you give`));
  }
  assert.equal(llm.requests.length, 0);
  // The same session without its agents is planned as usual.
  const planned = await requestJson<{ status: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'x', strategy: 'adaptive' },
  });
  assert.equal(planned.status, 201, JSON.stringify(planned.body));
  assert.equal(planned.body.status, 'planning');
  // Without a strategy, the orchestrator's plan is a dependency graph: pipeline.
  const graph = await requestJson<{ strategy: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'x' },
  });
  assert.equal(graph.status, 201, JSON.stringify(graph.body));
  assert.equal(graph.body.strategy, 'pipeline');
});

test('an agent whose role is named `orchestrator` runs as an agent, not as an orchestrator task', async (t) => {
  const llm = await startLlmServer();
  t.after(() => llm.close());
  llm.setHandler((request: RecordedLlmRequest) =>
    request.body.response_format !== undefined ? { object: plan } : { text: 'agent answer' },
  );
  const server = await startTestServer({
    config: { providers: { local: { type: 'openai-compatible', baseURL: llm.openaiBaseURL, model: 'm' } } },
  });
  t.after(() => server.close());
  // A custom role of that name, as one stored before the name was reserved.
  await (server.app.database.db as unknown as LlmDb)
    .insertInto('custom_roles')
    .values({
      tenant_id: 'default',
      name: 'orchestrator',
      description: 'Coordinates the release.',
      capabilities: '[]',
      instructions: 'You coordinate the release of the work.',
      created_by: 'test',
      created_at: 1,
      updated_at: 1,
    })
    .execute();
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'release', agents: [{ name: 'lead', role: 'orchestrator', task: 'Coordinate it' }] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const done = await waitForSession<{
    status: string;
    error: string | null;
    tasks: Array<{ name: string; kind: string; result: string | null }>;
  }>(server.url, created.body.id);
  assert.equal(done.status, 'completed', done.error ?? '');
  assert.deepEqual(
    done.tasks.map((task) => [task.name, task.kind, task.result]),
    [['lead', 'agent', 'agent answer']],
  );
  assert.match(llm.requests[0]?.promptText ?? '', /Your task \(lead\)/);
});
