// Plan approval and budgets end to end: the real app over HTTP with the scripted LLM server.
// approval "required" stops after the planning task; approve (as is or edited) runs it; reject ends it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import type { ScriptedReply } from '../fixtures/llm-server.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { readAllEvents, requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

interface SessionView {
  status: string;
  error: string | null;
  result: string | null;
  tasks: Array<{ name: string; status: string; role: string }>;
}

async function startStack(t: import('node:test').TestContext, config: Record<string, unknown> = {}) {
  const stack = await startLlmAppStack(t, { config });
  stack.llm.setHandler((request): ScriptedReply => {
    if (request.body.response_format !== undefined) {
      return {
        object: {
          rationale: 'r',
          phases: [
            {
              name: 'main',
              tasks: [
                plannedTask('research', 'researcher'),
                plannedTask('write', 'documenter', { dependsOn: ['research'] }),
              ],
            },
          ],
        },
      };
    }
    if (request.promptText.includes('Write ONE answer for the user')) return { text: 'Final answer' };
    const name = /Your task \(([^)]+)\)/.exec(request.promptText)?.[1] ?? 'unknown';
    return { text: `output of ${name}` };
  });
  return stack;
}

async function createAwaiting(url: string): Promise<string> {
  const created = await requestJson<{ id: string; status: string }>(`${url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'Document the API', approval: 'required' },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  // The orchestrator plans after the POST answered; the plan then waits for approval.
  assert.equal(created.body.status, 'planning');
  const planned = await waitForSession<SessionView>(url, created.body.id, (s) => s.status !== 'planning');
  assert.equal(planned.status, 'awaiting_approval');
  return created.body.id;
}

test('approval required: waits with no task ready, then approve with an edited plan runs the edit', async (t) => {
  const { llm, server } = await startStack(t);
  const id = await createAwaiting(server.url);
  const planRequests = llm.requests.length;
  // Nothing runs while it waits: still awaiting, every task pending, no agent call made.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const waiting = await requestJson<SessionView>(`${server.url}/v1/sessions/${id}`);
  assert.equal(waiting.body.status, 'awaiting_approval');
  assert.deepEqual(
    waiting.body.tasks.map((x) => [x.name, x.status]),
    [
      ['orchestrator:plan', 'succeeded'],
      ['research', 'pending'],
      ['write', 'pending'],
    ],
  );
  assert.equal(llm.requests.length, planRequests);

  const edited = {
    phases: [
      {
        name: 'main',
        tasks: [
          { name: 'research', role: 'researcher', instructions: 'Work on research' },
          { name: 'review', role: 'reviewer', instructions: 'Review the research', depends_on: ['research'] },
        ],
      },
    ],
  };
  const approved = await requestJson<{ planVersion: number; readied: number }>(
    `${server.url}/v1/sessions/${id}/approve`,
    { method: 'POST', body: { plan: edited } },
  );
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  assert.deepEqual(approved.body, { planVersion: 2, readied: 1, renamedTasks: {} });

  const done = await waitForSession<SessionView>(server.url, id);
  assert.equal(done.status, 'completed', done.error ?? '');
  const agentTasks = done.tasks.filter((x) => !x.name.startsWith('orchestrator:')).map((x) => x.name);
  assert.deepEqual(agentTasks, ['research', 'review']);
  assert.ok(llm.requests.some((r) => r.promptText.includes('Review the research')));

  const plans = await requestJson<{
    items: Array<{ version: number; diff: { added: string[]; removed: string[] } | null }>;
  }>(`${server.url}/v1/sessions/${id}/plans`);
  assert.deepEqual(plans.body.items[1]?.diff?.added, ['review']);
  assert.deepEqual(plans.body.items[1]?.diff?.removed, ['write']);

  const events = await readAllEvents<{ seq: number; type: string; data: { from?: string; to?: string } }>(
    server.url,
    id,
  );
  const statuses = events
    .filter((e) => e.type === 'session.status')
    .map((e) => `${e.data.from}>${e.data.to}`);
  assert.deepEqual(statuses.slice(0, 3), [
    'pending>planning',
    'planning>awaiting_approval',
    'awaiting_approval>running',
  ]);
});

test('approval required: approve as is runs the generated plan (approval wakes the workers)', async (t) => {
  // Workers that practically never poll: only the approval's wake-up can start the tasks in time.
  const { server } = await startStack(t, { workers: { concurrency: 4, pollIntervalMs: 600_000 } });
  const id = await createAwaiting(server.url);
  const approved = await requestJson(`${server.url}/v1/sessions/${id}/approve`, { method: 'POST', body: {} });
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  const done = await waitForSession<SessionView>(server.url, id);
  assert.equal(done.status, 'completed', done.error ?? '');
  assert.deepEqual(
    done.tasks.filter((x) => !x.name.startsWith('orchestrator:')).map((x) => x.name),
    ['research', 'write'],
  );
});

test('approval required: reject ends the session failed with the reason', async (t) => {
  const { server } = await startStack(t);
  const id = await createAwaiting(server.url);
  const rejected = await requestJson(`${server.url}/v1/sessions/${id}/reject`, {
    method: 'POST',
    body: { reason: 'Too broad' },
  });
  assert.equal(rejected.status, 204, JSON.stringify(rejected.body));
  const done = await waitForSession<SessionView>(server.url, id);
  assert.equal(done.status, 'failed');
  assert.equal(done.error, 'Plan rejected: Too broad');
  assert.deepEqual(
    done.tasks.map((x) => [x.name, x.status]),
    [
      ['orchestrator:plan', 'succeeded'],
      ['research', 'cancelled'],
      ['write', 'cancelled'],
    ],
  );
  const events = await readAllEvents<{ seq: number; type: string }>(server.url, id);
  assert.equal(events.at(-1)?.type, 'session.finished');
});

test('approval must be required or none', async (t) => {
  const { server } = await startStack(t);
  const created = await requestJson<{ code: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'x', approval: 'maybe' },
  });
  assert.equal(created.status, 400);
  assert.equal(created.body.code, 'VALIDATION_FAILED');
});

test('a token budget crossed mid-stream stops the agent; the session fails with BUDGET_EXCEEDED', async (t) => {
  const { llm, server } = await startLlmAppStack(t);
  const longText = 'word '.repeat(8000);
  llm.setHandler(() => ({ text: longText, chunkSize: 200, chunkDelayMs: 5 }));
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: {
      objective: 'Write a lot',
      agents: [
        { name: 'writer', role: 'documenter', task: 'Write everything' },
        { name: 'after', role: 'reviewer', task: 'Review it', depends_on: ['writer'] },
      ],
      budget: { maxTokens: 2000 },
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const done = await waitForSession<SessionView>(server.url, created.body.id);
  assert.equal(done.status, 'failed');
  assert.match(done.error ?? '', /^BUDGET_EXCEEDED: token budget exceeded: \d+ of 2000 tokens used/);
  assert.deepEqual(
    done.tasks.map((x) => [x.name, x.status]),
    [
      ['writer', 'failed'],
      ['after', 'cancelled'],
    ],
  );
  const events = await readAllEvents<{ seq: number; type: string; data: { line?: string; error?: string } }>(
    server.url,
    created.body.id,
  );
  const streamed = events
    .filter((e) => e.type === 'task.output')
    .map((e) => e.data.line ?? '')
    .join('').length;
  assert.ok(streamed > 0 && streamed < longText.length / 2, `streamed ${streamed} chars`);
  const result = events.find((e) => e.type === 'task.result');
  assert.match(result?.data.error ?? '', /^Budget exceeded: token budget exceeded/);
  // Only the one stopped agent call: the dependant never ran.
  assert.equal(llm.requests.length, 1);
});

test('a token budget crossed while the synthesis streams stops it; the session fails with BUDGET_EXCEEDED', async (t) => {
  const longText = 'word '.repeat(8000);
  const { llm, server } = await startLlmAppStack(t);
  const small = { inputTokens: 10, outputTokens: 10 };
  llm.setHandler((request): ScriptedReply => {
    if (request.body.response_format !== undefined) {
      return {
        object: {
          rationale: 'r',
          phases: [{ name: 'main', tasks: [plannedTask('research', 'researcher')] }],
        },
        usage: small,
      };
    }
    if (request.promptText.includes('Write ONE answer for the user')) {
      return { text: longText, chunkSize: 200, chunkDelayMs: 5, usage: small };
    }
    return { text: 'output of research', usage: small };
  });
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'Research and answer', budget: { maxTokens: 2000 } },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const done = await waitForSession<SessionView & { tasks: Array<{ kind?: string }> }>(
    server.url,
    created.body.id,
  );
  assert.equal(done.status, 'failed');
  assert.match(done.error ?? '', /^BUDGET_EXCEEDED: token budget exceeded: \d+ of 2000 tokens used/);
  assert.equal(done.result, null);
  const research = done.tasks.find((x) => x.name === 'research');
  assert.equal(research?.status, 'succeeded');
  const events = await readAllEvents<{
    seq: number;
    type: string;
    data: { line?: string; error?: string; taskId?: string };
  }>(server.url, created.body.id);
  const stopped = events.find((e) => e.type === 'task.result' && e.data.error?.startsWith('Budget exceeded'));
  assert.ok(stopped, 'the synthesis task ended with the budget error');
  const streamed = events
    .filter((e) => e.type === 'task.output' && e.data.taskId === stopped.data.taskId)
    .map((e) => e.data.line ?? '')
    .join('').length;
  assert.ok(streamed > 0 && streamed < longText.length / 2, `synthesis streamed ${streamed} chars`);
});

test('the tenant default cost budget is enforced when a task finishes; the stricter limit wins', async (t) => {
  const { llm, server } = await startLlmAppStack(t, {
    handler: () => ({ text: 'short answer', usage: { inputTokens: 1_000_000, outputTokens: 10 } }),
    llm: { prices: { m: { inputPerMTok: 3, outputPerMTok: 15 } }, budgets: { default: { maxCostUsd: 2 } } },
  });
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: {
      objective: 'Two steps',
      strategy: 'sequential',
      agents: [
        { name: 'one', role: 'researcher', task: 'Step one' },
        { name: 'two', role: 'researcher', task: 'Step two' },
      ],
      // Looser than the tenant default: the default's $2 still applies.
      budget: { maxCostUsd: 100 },
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const done = await waitForSession<SessionView & { usage: { costUsd: number } }>(
    server.url,
    created.body.id,
  );
  assert.equal(done.status, 'failed');
  assert.match(done.error ?? '', /^BUDGET_EXCEEDED: cost budget exceeded: \$3\.0\d+ of \$2 spent/);
  assert.deepEqual(
    done.tasks.map((x) => [x.name, x.status]),
    [
      ['one', 'succeeded'],
      ['two', 'cancelled'],
    ],
  );
  assert.ok(done.usage.costUsd > 2);
  assert.equal(llm.requests.length, 1);
  const events = await readAllEvents<{ seq: number; type: string; data: { error?: string } }>(
    server.url,
    created.body.id,
  );
  const finished = events.at(-1);
  assert.equal(finished?.type, 'session.finished');
  assert.match(finished?.data.error ?? '', /^BUDGET_EXCEEDED/);
});

test('a session within its budget completes; an invalid budget is refused', async (t) => {
  const { server } = await startStack(t);
  const ok = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: {
      objective: 'Small',
      agents: [{ role: 'researcher', task: 'One thing' }],
      budget: { maxTokens: 1_000_000, deadlineSeconds: 600 },
    },
  });
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
  const done = await waitForSession<SessionView>(server.url, ok.body.id);
  assert.equal(done.status, 'completed', done.error ?? '');
  const bad = await requestJson<{ code: string; detail: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'x', agents: [{ role: 'researcher', task: 'y' }], budget: { maxTokens: -5 } },
  });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.code, 'VALIDATION_FAILED');
});

test('the tenant default approval applies to sessions that do not set it; "none" opts out', async (t) => {
  const { server } = await startStack(t, {});
  const strict = await startTestServer({
    config: {
      providers: {
        local: { type: 'openai-compatible', baseURL: 'http://llm.invalid/v1', model: 'm', apiKey: 'k' },
      },
      llm: { approval: { default: 'required' } },
    },
  });
  t.after(() => strict.close());
  const explicit = { role: 'qa', task: 'say hi', runner: 'echo' };
  const waiting = await requestJson<{ status: string }>(`${strict.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'defaults', agents: [explicit] },
  });
  assert.equal(waiting.status, 201, JSON.stringify(waiting.body));
  assert.equal(waiting.body.status, 'awaiting_approval');
  const optOut = await requestJson<{ status: string }>(`${strict.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'defaults', agents: [explicit], approval: 'none' },
  });
  assert.equal(optOut.body.status, 'running');
  // The default server (no approval default) starts sessions at once.
  const plain = await requestJson<{ status: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'defaults', agents: [explicit] },
  });
  assert.equal(plain.body.status, 'running');
});

test('adaptive session with approval required stops at the first plan and again at the phase gate', async (t) => {
  const { llm, server } = await startLlmAppStack(t);
  let gates = 0;
  llm.setHandler((request): ScriptedReply => {
    if (request.promptText.includes('Write ONE answer for the user')) return { text: 'Final synthesis' };
    if (request.body.response_format !== undefined) {
      if (!request.promptText.includes('has finished. Outputs so far')) {
        return {
          object: {
            rationale: 'r',
            phases: [{ name: 'explore', tasks: [plannedTask('explore', 'researcher')] }],
          },
        };
      }
      gates += 1;
      return gates === 1
        ? {
            object: {
              decision: 'continue',
              reason: 'more',
              next_phase: {
                name: 'deepen',
                tasks: [plannedTask('deepen', 'researcher', { agent: 'explore' })],
              },
            },
          }
        : { object: { decision: 'complete', reason: 'done', next_phase: null } };
    }
    const name = /Your task \(([^)]+)\)/.exec(request.promptText)?.[1] ?? 'unknown';
    return { text: `output of ${name}` };
  });
  const created = await requestJson<{ id: string; status: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'Compare hosting options', strategy: 'adaptive', approval: 'required' },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal(created.body.status, 'planning');
  const id = created.body.id;
  const planned = await waitForSession<SessionView>(server.url, id, (s) => s.status !== 'planning');
  assert.equal(planned.status, 'awaiting_approval', planned.error ?? '');
  const first = await requestJson(`${server.url}/v1/sessions/${id}/approve`, { method: 'POST', body: {} });
  assert.equal(first.status, 200, JSON.stringify(first.body));

  // The gate plans `deepen`; the session waits again with `deepen` pending.
  const atGate = await waitForSession<SessionView>(server.url, id, (s) => s.status !== 'running');
  assert.equal(atGate.status, 'awaiting_approval', atGate.error ?? '');
  assert.deepEqual(
    atGate.tasks.map((x) => [x.name, x.status]),
    [
      ['orchestrator:plan', 'succeeded'],
      ['explore', 'succeeded'],
      ['orchestrator:phase-gate-1', 'succeeded'],
      ['deepen', 'pending'],
    ],
  );
  const second = await requestJson<{ planVersion: number; readied: number }>(
    `${server.url}/v1/sessions/${id}/approve`,
    {
      method: 'POST',
      body: {},
    },
  );
  assert.equal(second.status, 200, JSON.stringify(second.body));
  assert.equal(second.body.readied, 1);

  const done = await waitForSession<SessionView>(server.url, id);
  assert.equal(done.status, 'completed', done.error ?? '');
  assert.equal(done.result, 'Final synthesis');
  const events = await readAllEvents<{ seq: number; type: string; data: { from?: string; to?: string } }>(
    server.url,
    id,
  );
  const waits = events.filter((e) => e.type === 'session.status' && e.data.to === 'awaiting_approval');
  assert.deepEqual(
    waits.map((e) => e.data.from),
    ['planning', 'running'],
  );
});
