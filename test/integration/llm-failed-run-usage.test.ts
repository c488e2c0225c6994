// What an agent spent before it failed is charged to its task, its agent and its session, and a
// cost budget stops an agent while it streams: the real app over HTTP with the scripted LLM server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { type ScriptedReply, startLlmServer } from '../fixtures/llm-server.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

interface Usage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  costUsd: number;
}

interface SessionView {
  status: string;
  error: string | null;
  usage: Usage;
  tasks: Array<{ name: string; status: string; usage: Usage }>;
  agents: Array<{ name: string; usage: Usage }>;
}

/** $0.01 per output token and $0.001 per input token for the scripted provider's model `m`. */
const PRICES = { m: { inputPerMTok: 1000, outputPerMTok: 10_000 } };

async function runSession(url: string, body: Record<string, unknown>): Promise<SessionView> {
  const created = await requestJson<{ id: string }>(`${url}/v1/sessions`, { method: 'POST', body });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return waitForSession<SessionView>(url, created.body.id);
}

test('a cost budget crossed mid-stream stops the agent; what it streamed is charged', async (t) => {
  const { llm, server } = await startLlmAppStack(t, { llm: { prices: PRICES } });
  const longText = 'word '.repeat(8000);
  llm.setHandler(() => ({ text: longText, chunkSize: 200, chunkDelayMs: 5 }));
  const done = await runSession(server.url, {
    objective: 'Write a lot',
    agents: [{ name: 'writer', role: 'documenter', task: 'Write everything' }],
    // 1,000 output tokens (4,000 characters) at $0.01; the whole answer would cost $100.
    budget: { maxCostUsd: 10 },
  });
  assert.equal(done.status, 'failed');
  assert.match(done.error ?? '', /^BUDGET_EXCEEDED: cost budget exceeded: \$\d+\.\d+ of \$10 spent/);
  const [writer] = done.tasks;
  assert.equal(writer?.status, 'failed');
  // Charged what it streamed (estimated at 4 characters per token), priced: past the budget, far
  // below the whole answer.
  assert.ok(writer.usage.costUsd > 10 && writer.usage.costUsd < 50, JSON.stringify(writer.usage));
  assert.ok(writer.usage.outputTokens >= 1000, JSON.stringify(writer.usage));
  assert.deepEqual(done.usage, writer.usage);
  assert.deepEqual(done.agents[0]?.usage, writer.usage);
});

test('a model call that finished before the run failed is charged to the task and the session', async (t) => {
  const { llm, server } = await startLlmAppStack(t, {
    llm: { prices: PRICES, agentMessaging: true },
  });
  llm.setHandler((request): ScriptedReply => {
    const afterToolCall = (request.body.messages as Array<{ role: string }>).some(
      (message) => message.role === 'tool',
    );
    if (request.promptText.includes('Your task (writer)') && !afterToolCall) {
      // Step 1 finishes with a tool call and its usage; step 2 is refused (400: not retried).
      return {
        toolCalls: [{ name: 'send_message', input: { to: 'reader', message: 'heads up' } }],
        usage: { inputTokens: 300, outputTokens: 40 },
      };
    }
    if (request.promptText.includes('Your task (writer)')) return { error: 400, message: 'bad request' };
    return { text: 'read', usage: { inputTokens: 10, outputTokens: 2 } };
  });
  const done = await runSession(server.url, {
    objective: 'Write, then read',
    agents: [
      { name: 'writer', role: 'documenter', task: 'Write' },
      { name: 'reader', role: 'reviewer', task: 'Read' },
    ],
  });
  assert.equal(done.status, 'failed');
  const writer = done.tasks.find((task) => task.name === 'writer');
  assert.equal(writer?.status, 'failed');
  // 300 input tokens at $0.001 and 40 output tokens at $0.01.
  const expected = { inputTokens: 300, outputTokens: 40, cacheReadTokens: 0, costUsd: 0.7 };
  assert.deepEqual(writer.usage, expected);
  assert.equal(done.usage.inputTokens, 300 + 10);
  assert.equal(done.usage.outputTokens, 40 + 2);
});

test('an attempt cut off mid-stream and retried is charged next to the answer that succeeded', async (t) => {
  const { llm, server } = await startLlmAppStack(t, {
    llm: { prices: PRICES, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5 } },
  });
  const partial = 'x'.repeat(4000);
  let calls = 0;
  llm.setHandler((): ScriptedReply => {
    calls += 1;
    // First attempt: 4,000 characters (about 1,000 tokens) streamed, then the connection drops.
    if (calls === 1) return { text: `${partial}${partial}`, chunkSize: 1000, dropAfterFrames: 5 };
    return { text: 'done', usage: { inputTokens: 50, outputTokens: 5 } };
  });
  const done = await runSession(server.url, {
    objective: 'Write',
    agents: [{ name: 'writer', role: 'documenter', task: 'Write' }],
  });
  assert.equal(done.status, 'completed', done.error ?? '');
  assert.equal(calls, 2);
  const [writer] = done.tasks;
  // The answer's 5 output tokens plus the estimate of the cut-off attempt's streamed text.
  assert.ok(writer!.usage.outputTokens >= 5 + 900, JSON.stringify(writer!.usage));
  assert.ok(writer!.usage.inputTokens > 50, JSON.stringify(writer!.usage));
  assert.deepEqual(done.usage, writer!.usage);
});

test('a cost budget crossed while the synthesis streams stops it; what it streamed is charged', async (t) => {
  const { llm, server } = await startLlmAppStack(t, { llm: { prices: PRICES } });
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
      return { text: 'word '.repeat(8000), chunkSize: 200, chunkDelayMs: 5, usage: small };
    }
    return { text: 'output of research', usage: small };
  });
  const done = await runSession(server.url, { objective: 'Research and answer', budget: { maxCostUsd: 10 } });
  assert.equal(done.status, 'failed');
  assert.match(done.error ?? '', /^BUDGET_EXCEEDED: cost budget exceeded/);
  const synthesis = done.tasks.find((task) => task.status === 'failed');
  assert.equal(
    synthesis?.name,
    'orchestrator:synthesis',
    JSON.stringify(done.tasks.map((task) => [task.name, task.status])),
  );
  assert.ok(synthesis.usage.costUsd > 9 && synthesis.usage.costUsd < 50, JSON.stringify(synthesis.usage));
  const total = done.tasks.reduce((sum, task) => sum + task.usage.costUsd, 0);
  assert.ok(Math.abs(done.usage.costUsd - total) < 1e-6, `${done.usage.costUsd} vs ${total}`);
});

test('parallel agents each under a budget but over it together are stopped, and all they spent is charged', async (t) => {
  const { llm, server } = await startLlmAppStack(t, { llm: { prices: PRICES } });
  // Each answer: 4,000 characters (about 1,000 tokens, about $10), streamed over about a second.
  const answer = 'word '.repeat(800);
  llm.setHandler(() => ({ text: answer, chunkSize: 100, chunkDelayMs: 25 }));
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: {
      objective: 'Write twice',
      agents: [
        { name: 'left', role: 'documenter', task: 'Write' },
        { name: 'right', role: 'documenter', task: 'Write' },
      ],
      // One answer fits; two do not.
      budget: { maxCostUsd: 16 },
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const done = await waitForSession<SessionView>(server.url, created.body.id);
  assert.equal(done.status, 'failed');
  assert.match(done.error ?? '', /^BUDGET_EXCEEDED: cost budget exceeded/);
  // The agent stopped with the session (cancelled) is charged what it streamed too; that charge
  // may land just after the session's end is visible.
  const charged = await waitForSession<SessionView>(
    server.url,
    created.body.id,
    (session) => session.tasks.every((task) => task.usage.outputTokens > 0),
    10_000,
  );
  const tasks = charged.tasks.map((task) => [task.name, task.status, task.usage.outputTokens > 0]);
  assert.deepEqual(tasks.map(([, status]) => status).sort(), ['cancelled', 'failed'], JSON.stringify(tasks));
  assert.equal(
    charged.usage.outputTokens,
    charged.tasks.reduce((sum, task) => sum + task.usage.outputTokens, 0),
  );
  // Stopped once the two together crossed $16, before the two whole answers ($20 and more).
  assert.ok(charged.usage.costUsd > 16 && charged.usage.costUsd < 19.5, JSON.stringify(charged.usage));
});

test('an agent stopped by the session being cancelled is charged what it streamed', async (t) => {
  const { llm, server } = await startLlmAppStack(t, { llm: { prices: PRICES } });
  let streaming!: () => void;
  const started = new Promise<void>((resolve) => {
    streaming = resolve;
  });
  llm.setHandler(() => {
    streaming();
    return { text: 'word '.repeat(2000), chunkSize: 100, chunkDelayMs: 20 };
  });
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'Write', agents: [{ name: 'writer', role: 'documenter', task: 'Write' }] },
  });
  await started;
  await new Promise((resolve) => setTimeout(resolve, 300));
  const cancelled = await requestJson(`${server.url}/v1/sessions/${created.body.id}/cancel`, {
    method: 'POST',
  });
  assert.ok(cancelled.status < 300, JSON.stringify(cancelled.body));
  const charged = await waitForSession<SessionView>(
    server.url,
    created.body.id,
    (session) => session.status === 'cancelled' && session.usage.outputTokens > 0,
    10_000,
  );
  assert.equal(charged.status, 'cancelled');
  const [writer] = charged.tasks;
  assert.equal(writer?.status, 'cancelled');
  // Part of the 10,000 characters (about 2,500 tokens) streamed before the cancel.
  assert.ok(writer.usage.outputTokens > 0 && writer.usage.outputTokens < 2500, JSON.stringify(writer.usage));
  assert.deepEqual(charged.usage, writer.usage);
});

test('an attempt cut off while it streamed a tool call is charged the call it streamed, not nothing', async (t) => {
  const { llm, server } = await startLlmAppStack(t, {
    llm: { prices: PRICES, agentMessaging: true, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5 } },
  });
  const message = 'y'.repeat(3000);
  let calls = 0;
  llm.setHandler((request): ScriptedReply => {
    if (!request.promptText.includes('Your task (writer)')) return { text: 'read' };
    calls += 1;
    // The tool call's arguments (over 3,000 characters, about 750 tokens) come in two frames after
    // the first; then the connection drops, before the answer's end and its usage.
    if (calls === 1) {
      return { toolCalls: [{ name: 'send_message', input: { to: 'reader', message } }], dropAfterFrames: 3 };
    }
    return { text: 'done', usage: { inputTokens: 50, outputTokens: 5 } };
  });
  const done = await runSession(server.url, {
    objective: 'Write, then read',
    agents: [
      { name: 'writer', role: 'documenter', task: 'Write' },
      { name: 'reader', role: 'reviewer', task: 'Read', depends_on: ['writer'] },
    ],
  });
  assert.equal(done.status, 'completed', done.error ?? '');
  assert.equal(calls, 2);
  const writer = done.tasks.find((task) => task.name === 'writer');
  // The answer's 5 output tokens, and the estimate of the cut-off call: its prompt, and the tool
  // call it streamed at 4 characters per token. It was charged 5 output tokens and 50 input.
  assert.ok((writer?.usage.outputTokens ?? 0) >= 5 + 750, JSON.stringify(writer?.usage));
  assert.ok((writer?.usage.inputTokens ?? 0) > 50 + 100, JSON.stringify(writer?.usage));
});

test('a cost budget crossed while a tool call streams stops the agent before the tool runs', async (t) => {
  const { llm, server } = await startLlmAppStack(t, { llm: { prices: PRICES, agentMessaging: true } });
  // Two frames of about 2,000 characters each (about 500 tokens, $5), a moment apart: no text,
  // so no output flush checked the budget; the message was sent and only the finish stopped it.
  const message = 'y'.repeat(3990);
  llm.setHandler((request): ScriptedReply => {
    if (!request.promptText.includes('Your task (writer)')) return { text: 'read' };
    return {
      toolCalls: [{ name: 'send_message', input: { to: 'reader', message } }],
      chunkDelayMs: 300,
    };
  });
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: {
      objective: 'Write, then read',
      agents: [
        { name: 'writer', role: 'documenter', task: 'Write' },
        { name: 'reader', role: 'reviewer', task: 'Read', depends_on: ['writer'] },
      ],
      budget: { maxCostUsd: 3 },
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const done = await waitForSession<SessionView>(server.url, created.body.id);
  assert.equal(done.status, 'failed');
  assert.match(done.error ?? '', /^BUDGET_EXCEEDED: cost budget exceeded/);
  const events = await requestJson<{ items: Array<{ type: string }> }>(
    `${server.url}/v1/sessions/${created.body.id}/events?limit=1000`,
  );
  assert.deepEqual(
    events.body.items.filter((event) => event.type === 'agent.message'),
    [],
    'the message was not sent',
  );
  const writer = done.tasks.find((task) => task.name === 'writer');
  assert.equal(writer?.status, 'failed');
  // Charged what it streamed: past the budget, short of the whole call ($10 of arguments).
  assert.ok(
    (writer?.usage.costUsd ?? 0) > 3 && (writer?.usage.costUsd ?? 0) < 9,
    JSON.stringify(writer?.usage),
  );
});

test('once an attempt cut off mid-stream has crossed the budget, no further attempt is sent', async (t) => {
  const llm = await startLlmServer({ apiKey: 'k' });
  t.after(() => llm.close());
  const provider = (model: string) => ({
    type: 'openai-compatible',
    baseURL: llm.openaiBaseURL,
    model,
    apiKey: 'k',
  });
  const server = await startTestServer({
    config: {
      providers: { local: provider('m'), backup: provider('b') },
      llm: {
        retry: { maxAttempts: 1 },
        agentMessaging: false,
        prices: { ...PRICES, b: PRICES.m },
        defaultFallback: ['backup'],
      },
    },
  });
  t.after(() => server.close());
  llm.setHandler((request): ScriptedReply => {
    // 800 characters (about 200 output tokens, $2) in one frame, then the answer ends without its
    // finish: short of an output flush. The fallback is tried at once, with no backoff.
    if (request.model === 'm') return { text: 'x'.repeat(800), chunkSize: 800, endAfterFrames: 2 };
    return { text: 'done', usage: { inputTokens: 50, outputTokens: 5 } };
  });
  const done = await runSession(server.url, {
    objective: 'Write',
    agents: [{ name: 'writer', role: 'documenter', task: 'Write' }],
    budget: { maxCostUsd: 1 },
  });
  assert.equal(done.status, 'failed');
  assert.match(done.error ?? '', /^BUDGET_EXCEEDED: cost budget exceeded/);
  // The cut-off attempt alone was over the budget: the fallback was not sent the prompt too.
  assert.deepEqual(
    llm.requests.map((request) => request.model),
    ['m'],
  );
  const [writer] = done.tasks;
  assert.ok((writer?.usage.outputTokens ?? 0) >= 200, JSON.stringify(writer?.usage));
});
