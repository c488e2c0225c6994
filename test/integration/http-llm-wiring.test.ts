// The composition root with an LLM provider configured: an objective-only session submitted over
// HTTP is planned and run by LLM agents (scripted LLM server), and custom roles can be added.
import assert from 'node:assert/strict';
import { test } from 'node:test';
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
