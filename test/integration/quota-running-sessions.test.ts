// The tenant daily token quota bounds sessions already running: once the tenant's tokens charged
// today reach it, an adaptive session plans no further phase (it ends failed, QUOTA_EXCEEDED) and a
// steering message is refused with 429 QUOTA_EXCEEDED. Real app and scripted LLM, SQLite and
// PostgreSQL (PostgreSQL needs --test-global-setup=test/fixtures/postgres-global-setup.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startDailyQuotaStack } from '../fixtures/daily-quota-stack.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { answerByTaskName } from '../fixtures/llm-engine.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { scrapeSample } from '../fixtures/metrics-scrape.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';

interface SessionView {
  id: string;
  status: string;
  error: string | null;
}

for (const store of ['sqlite', 'postgres'] as const) {
  test(`over the daily token quota a running session starts no phase and takes no steering: ${store}`, {
    timeout: 60_000,
  }, async (t) => {
    const { llm, server } = await startDailyQuotaStack(t, store, 300, {
      llm: { planner: { maxPhases: 3 } },
      handler: (request) => {
        switch (llmRequestKind(request)) {
          case 'plan':
            return {
              object: {
                rationale: 'start',
                phases: [{ name: 'explore', tasks: [plannedTask('survey', 'researcher')] }],
              },
              usage: { inputTokens: 100, outputTokens: 10 },
            };
          case 'gate':
            return { object: { decision: 'complete', reason: 'done', next_phase: null } };
          case 'synthesis':
            return { text: 'answer', usage: { inputTokens: 1, outputTokens: 1 } };
          default:
            // 110 tokens per agent answer.
            return answerByTaskName(request);
        }
      },
    });
    // Waits for approval after its plan (110 tokens charged today).
    const waiting = await requestJson<SessionView>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Waiting for approval', strategy: 'adaptive', approval: 'required' },
    });
    assert.equal(waiting.status, 201, JSON.stringify(waiting.body));
    await waitForSession<SessionView>(server.url, waiting.body.id, (s) => s.status === 'awaiting_approval');
    // Admitted at 110: its plan and phase 1 bring the tenant to 330, so its phase gate is not planned.
    const adaptive = await requestJson<SessionView>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Adaptive over the quota', strategy: 'adaptive' },
    });
    assert.equal(adaptive.status, 201, JSON.stringify(adaptive.body));
    const ended = await waitForSession<SessionView>(server.url, adaptive.body.id);
    assert.equal(ended.status, 'failed');
    assert.match(
      ended.error ?? '',
      /^QUOTA_EXCEEDED: The tenant used 330 tokens today \(limit 300\); the session ends before planning phase 1/,
    );
    assert.equal(llm.requests.filter((request) => llmRequestKind(request) === 'gate').length, 0);
    // Ended by the tenant's budget: counted once under scope tenant.
    const tenantStops = 'maos_budget_rejections_total{scope="tenant"}';
    assert.equal(await scrapeSample(server.url, tenantStops), 1);
    assert.equal(await scrapeSample(server.url, 'maos_budget_rejections_total{scope="session"}'), 0);
    // The session still waiting takes no steering message.
    const steered = await requestJson<{ code: string; detail: string }>(
      `${server.url}/v1/sessions/${waiting.body.id}/messages`,
      { method: 'POST', body: { message: 'Focus on cost' } },
    );
    assert.equal(steered.status, 429, JSON.stringify(steered.body));
    assert.equal(steered.body.code, 'QUOTA_EXCEEDED');
    assert.match(steered.body.detail, /takes no steering message until 00:00 UTC/);
    assert.ok(Number(steered.headers.get('retry-after')) > 0);
    assert.equal(await scrapeSample(server.url, tenantStops), 2);
  });
}

test('a tenant at its cap of unfinished sessions may still steer them', { timeout: 60_000 }, async (t) => {
  const { server } = await startLlmAppStack(t, {
    config: { rateLimit: { enabled: true, maxConcurrentSessionsPerTenant: 1 } },
    handler: (request) =>
      llmRequestKind(request) === 'plan'
        ? {
            object: {
              rationale: 'start',
              phases: [{ name: 'explore', tasks: [plannedTask('survey', 'researcher')] }],
            },
          }
        : answerByTaskName(request),
  });
  const waiting = await requestJson<SessionView>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'Waiting for approval', strategy: 'adaptive', approval: 'required' },
  });
  assert.equal(waiting.status, 201, JSON.stringify(waiting.body));
  await waitForSession<SessionView>(server.url, waiting.body.id, (s) => s.status === 'awaiting_approval');
  const refused = await requestJson(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'One too many', strategy: 'adaptive' },
  });
  assert.equal(refused.status, 429);
  const steered = await requestJson(`${server.url}/v1/sessions/${waiting.body.id}/messages`, {
    method: 'POST',
    body: { message: 'Focus on cost' },
  });
  assert.equal(steered.status, 202, JSON.stringify(steered.body));
});
