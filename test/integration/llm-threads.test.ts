// Threads: a follow-up session with the same thread_id is planned with a summary of the earlier
// sessions of that thread (and only of that thread). Real app over HTTP, scripted LLM server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import type { ScriptedReply } from '../fixtures/llm-server.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

test('the orchestrator receives a summary of earlier sessions in the same thread', async (t) => {
  const { llm, server } = await startLlmAppStack(t);
  llm.setHandler((request): ScriptedReply => {
    if (request.body.response_format !== undefined) {
      if (request.promptText.includes('has finished. Outputs so far')) {
        return { object: { decision: 'complete', reason: 'done', next_phase: null } };
      }
      const task = {
        name: 'work',
        role: 'engineer',
        instructions: 'Do it',
        depends_on: [],
        deliverables: [],
        agent: null,
      };
      return { object: { rationale: 'r', phases: [{ name: 'main', tasks: [task] }] } };
    }
    if (request.promptText.includes('Write ONE answer for the user')) {
      return {
        text: request.promptText.includes('Build a REST API') ? 'API built with 3 endpoints' : 'Other answer',
      };
    }
    return { text: 'agent output' };
  });

  async function run(objective: string, threadId?: string, strategy?: string) {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective, ...(threadId ? { thread_id: threadId } : {}), ...(strategy ? { strategy } : {}) },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const done = await waitForSession<{ status: string; error: string | null }>(server.url, created.body.id);
    assert.equal(done.status, 'completed', done.error ?? '');
  }
  const planPrompt = (objective: string) =>
    llm.requests.find((r) => r.body.response_format !== undefined && r.promptText.includes(objective))
      ?.promptText ?? '';

  await run('Build a REST API', 'conv-1');
  assert.doesNotMatch(planPrompt('Build a REST API'), /Earlier sessions in this conversation/);
  await run('Unrelated objective', 'conv-2');
  await run('Now add pagination', 'conv-1');
  const followUp = planPrompt('Now add pagination');
  assert.match(
    followUp,
    /Earlier sessions in this conversation, [^\n]*\n```\n- Earlier objective \(completed\): Build a REST API/,
  );
  assert.match(followUp, /Result: API built with 3 endpoints/);
  assert.doesNotMatch(followUp, /Unrelated objective/);

  // Phase gates of an adaptive session get the same summary, without the session itself.
  await run('Adaptive follow-up', 'conv-1', 'adaptive');
  const gate =
    llm.requests.find(
      (r) =>
        r.promptText.includes('has finished. Outputs so far') && r.promptText.includes('Adaptive follow-up'),
    )?.promptText ?? '';
  assert.match(gate, /Earlier sessions in this conversation, [\s\S]*Now add pagination/);
  assert.doesNotMatch(gate, /Earlier objective \([a-z]+\): Adaptive follow-up/);

  const bad = await requestJson<{ code: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'x', thread_id: ' bad id' },
  });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.code, 'VALIDATION_FAILED');
});
