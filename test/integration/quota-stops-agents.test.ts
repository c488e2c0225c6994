// The tenant daily token quota bounds the agents of sessions already running: once the tenant's
// tokens charged today reach it, an LLM agent does not start, and one streaming is stopped when
// today's tokens and its estimate so far reach it. The session ends failed with QUOTA_EXCEEDED, its
// open tasks cancelled, what the stopped agent spent charged. Real app and scripted LLM, SQLite and
// PostgreSQL (PostgreSQL needs --test-global-setup=test/fixtures/postgres-global-setup.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startDailyQuotaStack } from '../fixtures/daily-quota-stack.ts';
import { scrapeSample } from '../fixtures/metrics-scrape.ts';
import { readAllEvents, requestJson, waitForSession } from '../fixtures/server.ts';

interface SessionView {
  id: string;
  status: string;
  error: string | null;
  usage: { inputTokens: number; outputTokens: number };
  tasks: Array<{ name: string; status: string; error: string | null }>;
}

const TENANT_STOPS = 'maos_budget_rejections_total{scope="tenant"}';
const SESSION_STOPS = 'maos_budget_rejections_total{scope="session"}';

const nameOf = (promptText: string) => /Your task \(([^)]+)\)/.exec(promptText)?.[1] ?? 'unknown';

for (const store of ['sqlite', 'postgres'] as const) {
  test(`over the daily token quota no agent starts and a streaming one is stopped: ${store}`, {
    timeout: 90_000,
  }, async (t) => {
    const longText = 'word '.repeat(8000);
    const { llm, server } = await startDailyQuotaStack(t, store, 2000, {
      handler: (request) => {
        switch (nameOf(request.promptText)) {
          // Brings the tenant to 1,700 tokens today, under the cap.
          case 'first':
            return { text: 'first done', usage: { inputTokens: 1600, outputTokens: 100 } };
          // About 10,000 tokens if it ran to the end.
          case 'long':
            return {
              text: longText,
              chunkSize: 200,
              chunkDelayMs: 5,
              usage: { inputTokens: 10, outputTokens: 10_000 },
            };
          default:
            return { text: 'ran', usage: { inputTokens: 1, outputTokens: 1 } };
        }
      },
    });
    const submit = async (agents: object[]) => {
      const created = await requestJson<SessionView>(`${server.url}/v1/sessions`, {
        method: 'POST',
        body: { objective: 'Quota at run time', agents },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      return waitForSession<SessionView>(server.url, created.body.id);
    };
    const calledFor = () => llm.requests.map((request) => nameOf(request.promptText));

    // 1,700 of 2,000 charged; the long answer is stopped once 300 more are estimated.
    const stopped = await submit([
      { name: 'first', role: 'researcher', task: 'Look around' },
      { name: 'long', role: 'documenter', task: 'Write everything', depends_on: ['first'] },
      { name: 'after', role: 'reviewer', task: 'Review it', depends_on: ['long'] },
    ]);
    assert.equal(stopped.status, 'failed');
    assert.match(
      stopped.error ?? '',
      /^QUOTA_EXCEEDED: The tenant used \d+ tokens today \(limit 2000\); the agent was stopped/,
    );
    assert.deepEqual(
      stopped.tasks.map((task) => [task.name, task.status]),
      [
        ['first', 'succeeded'],
        ['long', 'failed'],
        ['after', 'cancelled'],
      ],
    );
    assert.deepEqual(calledFor(), ['first', 'long']);
    const events = await readAllEvents<{ seq: number; type: string; data: { line?: string; code?: string } }>(
      server.url,
      stopped.id,
    );
    const streamed = events
      .filter((event) => event.type === 'task.output')
      .map((event) => event.data.line ?? '')
      .join('').length;
    assert.ok(streamed > 0 && streamed < longText.length / 2, `streamed ${streamed} chars`);
    assert.equal(
      events.find((event) => event.type === 'task.result' && event.data.code)?.data.code,
      'QUOTA_EXCEEDED',
    );
    // What the stopped agent spent is charged (its estimate: it never got to report usage).
    assert.ok(stopped.usage.inputTokens + stopped.usage.outputTokens > 1700, JSON.stringify(stopped.usage));

    // The stop counts once, as the tenant's budget, not the session's.
    assert.equal(await scrapeSample(server.url, TENANT_STOPS), 1);
    assert.equal(await scrapeSample(server.url, SESSION_STOPS), 0);

    // Over the cap now: a new session is refused at the door...
    const refused = await requestJson<{ code: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'One more', agents: [{ name: 'x', role: 'researcher', task: 'x' }] },
    });
    assert.equal(refused.status, 429);
    assert.equal(refused.body.code, 'QUOTA_EXCEEDED');
    assert.equal(await scrapeSample(server.url, TENANT_STOPS), 2);
  });

  test(`an agent due after the tenant crossed its daily tokens does not start: ${store}`, {
    timeout: 60_000,
  }, async (t) => {
    const { llm, server } = await startDailyQuotaStack(t, store, 300, {
      handler: (request) =>
        nameOf(request.promptText) === 'over'
          ? { text: 'over done', usage: { inputTokens: 300, outputTokens: 10 } }
          : { text: 'ran', usage: { inputTokens: 1, outputTokens: 1 } },
    });
    const created = await requestJson<SessionView>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'Quota at the next start',
        agents: [
          { name: 'over', role: 'researcher', task: 'Spend' },
          { name: 'next', role: 'documenter', task: 'Write', depends_on: ['over'] },
          { name: 'last', role: 'reviewer', task: 'Review', depends_on: ['next'] },
        ],
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const ended = await waitForSession<SessionView>(server.url, created.body.id);
    assert.equal(ended.status, 'failed');
    assert.match(
      ended.error ?? '',
      /^QUOTA_EXCEEDED: The tenant used 310 tokens today \(limit 300\); the agent was not started/,
    );
    assert.deepEqual(
      ended.tasks.map((task) => [task.name, task.status]),
      [
        ['over', 'succeeded'],
        ['next', 'failed'],
        ['last', 'cancelled'],
      ],
    );
    // No provider call for the agent refused at its start.
    assert.deepEqual(
      llm.requests.map((request) => nameOf(request.promptText)),
      ['over'],
    );
    assert.deepEqual(ended.usage, { ...ended.usage, inputTokens: 300, outputTokens: 10 });
    assert.equal(await scrapeSample(server.url, TENANT_STOPS), 1);
    assert.equal(await scrapeSample(server.url, SESSION_STOPS), 0);
  });
}
