// The LLM response cache through the real app: a provider with `cache: true`, temperature-0 routes
// and the default agent messaging (every agent is offered `send_message`). The same objective run
// twice is answered the second time from the store, planner and synthesis included, and an agent
// answer that called a tool replays the call, so the message is sent again. Scripted LLM, SQLite.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import type { LlmDb } from '../../src/agents/providers/llm-tables.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { answerScoutWriter, SCOUT_MESSAGE } from '../fixtures/scout-writer.ts';
import { readAllEvents, requestJson, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

interface EventView {
  seq: number;
  type: string;
  data: Record<string, unknown>;
}

async function cacheCounter(baseUrl: string, result: 'hit' | 'miss' | 'error'): Promise<number> {
  const text = await fetch(`${baseUrl}/metrics`).then((response) => response.text());
  const line = text
    .split('\n')
    .find((row) => row.startsWith(`maos_llm_cache_requests_total{provider="local",result="${result}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

/**
 * The app with the scripted scout and writer behind a provider with `cache: true`, every role it
 * uses at temperature 0 (cacheable), and `llm` over the fixture's LLM settings.
 */
function startCachingStack(t: TestContext, llm: { agentMessaging?: boolean } = {}) {
  return startLlmAppStack(t, {
    handler: answerScoutWriter,
    provider: { cache: true },
    llm: {
      ...llm,
      roles: {
        orchestrator: { provider: 'local', temperature: 0 },
        researcher: { provider: 'local', temperature: 0 },
        documenter: { provider: 'local', temperature: 0 },
      },
    },
  });
}

interface SessionView {
  id: string;
  status: string;
  error: string | null;
  result: string | null;
  tasks: Array<{ name: string; output: string | null }>;
  usage: { inputTokens: number };
}

/** Creates a session of the scout-and-writer objective (with `budget`, if given) and waits for its end. */
async function runResearchSession(baseUrl: string, budget?: Record<string, number>): Promise<SessionView> {
  const created = await requestJson<{ id: string }>(`${baseUrl}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'Research and write', ...(budget ? { budget } : {}) },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return waitForSession<SessionView>(baseUrl, created.body.id);
}

test('response cache with tools offered (default agent messaging)', { timeout: 60_000 }, async (t) => {
  // Agent messaging on: the default, which the fixture turns off.
  const { llm, server } = await startCachingStack(t, { agentMessaging: true });

  async function runSession() {
    const done = await runResearchSession(server.url);
    assert.equal(done.status, 'completed', done.error ?? '');
    const events = await readAllEvents<EventView>(server.url, done.id);
    return { done, messages: events.filter((event) => event.type === 'agent.message') };
  }

  const first = await runSession();
  // plan, scout (tool call, then its answer), writer, synthesis
  assert.equal(llm.requests.length, 5);
  assert.ok(llm.requests.filter((request) => request.toolNames.includes('send_message')).length >= 3);
  assert.equal(first.messages.length, 1);
  assert.equal(await cacheCounter(server.url, 'hit'), 0);
  assert.equal(await cacheCounter(server.url, 'miss'), 5);

  const second = await runSession();
  assert.equal(llm.requests.length, 5, 'the second session made no provider call');
  assert.equal(await cacheCounter(server.url, 'hit'), 5);
  assert.equal(await cacheCounter(server.url, 'miss'), 5);
  assert.equal(second.done.result, first.done.result);
  assert.equal(second.done.usage.inputTokens, 0, 'answers from the cache cost no tokens');
  // scout's cached answer was a send_message call: it ran again, so writer got the message (its
  // prompt, which holds the message, matched the cached one) and the session shows the event.
  assert.equal(second.messages.length, 1);
  assert.equal(second.messages[0]?.data.text, SCOUT_MESSAGE);
  assert.equal(second.messages[0]?.data.to, 'writer');

  // The entries are the store's (llm_response_cache), shared by every replica, not a process's.
  const db = server.app.database.db as unknown as LlmDb;
  const rows = await db.selectFrom('llm_response_cache').select(['provider', 'hits']).execute();
  assert.equal(rows.length, 5);
  assert.ok(rows.every((row) => row.provider === 'local' && row.hits === 1));
});

test('a session whose budget is all but spent runs from the cache: replayed answers count nothing in flight', {
  timeout: 60_000,
}, async (t) => {
  const { llm, server } = await startCachingStack(t);
  const runSession = (budget?: Record<string, number>) => runResearchSession(server.url, budget);
  const first = await runSession();
  assert.equal(first.status, 'completed', first.error ?? '');
  const requests = llm.requests.length;
  // One token: any estimate of a call in flight (agents' answers, the synthesis) would cross it.
  const second = await runSession({ maxTokens: 1 });
  assert.equal(second.status, 'completed', second.error ?? '');
  assert.equal(llm.requests.length, requests, 'every call came from the cache');
  assert.equal(second.usage.inputTokens, 0);
});

test('damaged cache rows are misses: the session completes, the provider answers, the rows are replaced', {
  timeout: 60_000,
}, async (t) => {
  const { llm, server } = await startCachingStack(t);
  const runSession = () => runResearchSession(server.url);
  const first = await runSession();
  assert.equal(first.status, 'completed', first.error ?? '');
  const asked = llm.requests.length;
  const db = server.app.database.db as unknown as LlmDb;
  const kept = await db.selectFrom('llm_response_cache').select(['key', 'response']).execute();
  assert.equal(kept.length, asked);
  // Rows as a broken disk or a hand edit leaves them: valid JSON with a part that is no part, and
  // JSON cut short. The first failed the model call (and so the task); neither was ever replaced.
  await db
    .updateTable('llm_response_cache')
    .set({ response: '{"content":[null],"finishReason":{"unified":"stop","raw":"stop"}}' })
    .execute();
  const [oneKey] = kept;
  assert.ok(oneKey);
  await db
    .updateTable('llm_response_cache')
    .set({ response: oneKey.response.slice(0, 20) })
    .where('key', '=', oneKey.key)
    .execute();

  const second = await runSession();
  assert.equal(second.status, 'completed', second.error ?? '');
  assert.equal(second.result, first.result);
  assert.equal(llm.requests.length, asked * 2, 'every damaged row was a miss: the provider answered');
  assert.equal(await cacheCounter(server.url, 'error'), asked, 'each counted as a lookup without an answer');
  const replaced = await db.selectFrom('llm_response_cache').select(['key', 'response', 'hits']).execute();
  // The same answers as first kept, but for the tool call's id, which the provider makes afresh.
  const sameAnswer = (response: string) => response.replace(/"toolCallId":"[^"]*"/g, '"toolCallId":"…"');
  assert.deepEqual(
    replaced.map((row) => [row.key, sameAnswer(row.response), row.hits]).sort(),
    kept.map((row) => [row.key, sameAnswer(row.response), 0]).sort(),
    'the fresh answers replaced the damaged rows',
  );

  const third = await runSession();
  assert.equal(third.status, 'completed', third.error ?? '');
  assert.equal(llm.requests.length, asked * 2, 'answered from the replaced rows');
});
