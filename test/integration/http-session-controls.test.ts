// GET /v1/sessions/:id shows the session's approval mode and pending approval, its budget with the
// usage against it, its deadline and its thread; the OpenAPI document describes those fields.
// Real app on SQLite with a scripted LLM provider (tasks run on the test runners).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';

interface SessionView {
  id: string;
  status: string;
  error: string | null;
  createdAt: string;
  approval: { mode: string; pending: boolean; pendingPhase: number | null };
  budget: {
    maxTokens: number | null;
    maxCostUsd: number | null;
    deadlineSeconds: number | null;
    usedTokens: number;
    usedCostUsd: number;
  } | null;
  deadline: string | null;
  threadId: string | null;
}

test('session document: approval, budget, deadline, thread', { timeout: 60_000 }, async (t) => {
  // The tenant default budget is merged in (the stricter limit wins).
  const { server } = await startLlmAppStack(t, { llm: { budgets: { default: { maxCostUsd: 5 } } } });

  await t.test('approval, budget and thread are shown, before and after approval', async () => {
    const created = await requestJson<SessionView>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'Controlled',
        agents: [{ name: 'first', role: 'qa', task: 'say hi', runner: 'echo' }],
        approval: 'required',
        budget: { maxTokens: 1000, maxCostUsd: 10, deadlineSeconds: 3600 },
        thread_id: 'thread-42',
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    const expectedDeadline = new Date(Date.parse(created.body.createdAt) + 3600_000).toISOString();
    const expectedBudget = {
      maxTokens: 1000,
      maxCostUsd: 5,
      deadlineSeconds: 3600,
      usedTokens: 0,
      usedCostUsd: 0,
    };
    // The submit response is the same document.
    assert.deepEqual(created.body.approval, { mode: 'required', pending: true, pendingPhase: 0 });
    assert.deepEqual(created.body.budget, expectedBudget);

    const waiting = await requestJson<SessionView>(`${server.url}/v1/sessions/${id}`);
    assert.equal(waiting.status, 200);
    assert.equal(waiting.body.status, 'awaiting_approval');
    assert.deepEqual(waiting.body.approval, { mode: 'required', pending: true, pendingPhase: 0 });
    assert.deepEqual(waiting.body.budget, expectedBudget);
    assert.equal(waiting.body.deadline, expectedDeadline);
    assert.equal(waiting.body.threadId, 'thread-42');

    const approved = await requestJson(`${server.url}/v1/sessions/${id}/approve`, {
      method: 'POST',
      body: {},
    });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const done = await waitForSession<SessionView>(server.url, id);
    assert.equal(done.status, 'completed', done.error ?? '');
    assert.deepEqual(done.approval, { mode: 'required', pending: false, pendingPhase: null });
    assert.deepEqual(done.budget, expectedBudget);
    assert.equal(done.deadline, expectedDeadline);
    assert.equal(done.threadId, 'thread-42');
    // A finished session is served from the detail cache: the same fields on the next read.
    const again = await requestJson<SessionView>(`${server.url}/v1/sessions/${id}`);
    assert.deepEqual(again.body, done);
  });

  await t.test('without settings: no approval, only the tenant budget, no thread', async () => {
    const created = await requestJson<SessionView>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Plain', agents: [{ role: 'qa', task: 'say hi', runner: 'echo' }] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const done = await waitForSession<SessionView>(server.url, created.body.id);
    assert.deepEqual(done.approval, { mode: 'none', pending: false, pendingPhase: null });
    assert.deepEqual(done.budget, {
      maxTokens: null,
      maxCostUsd: 5,
      deadlineSeconds: null,
      usedTokens: 0,
      usedCostUsd: 0,
    });
    assert.equal(done.deadline, null);
    assert.equal(done.threadId, null);
  });

  await t.test('the OpenAPI Session schema lists the fields', async () => {
    const doc = await requestJson<{
      components: { schemas: Record<string, { properties?: Record<string, unknown>; required?: string[] }> };
    }>(`${server.url}/openapi.json`);
    const session = doc.body.components.schemas.Session;
    assert.ok(session?.properties, 'Session schema');
    for (const field of ['approval', 'budget', 'deadline', 'threadId']) {
      assert.ok(field in session.properties, `Session.${field}`);
      assert.ok(session.required?.includes(field), `Session.${field} is required`);
    }
    assert.ok(doc.body.components.schemas.SessionApproval, 'SessionApproval component');
    assert.ok(doc.body.components.schemas.SessionBudget, 'SessionBudget component');
  });
});
