// The composition root with an LLM provider: an adaptive session over HTTP goes through a phase gate
// that reads a steering message, then synthesis, which becomes the result; plan versions and the
// approval routes answer as documented. Scripted LLM server, real app on SQLite.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import type { RecordedLlmRequest, ScriptedReply } from '../fixtures/llm-server.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

test('adaptive session over HTTP: phase gate with steering, synthesis as result, plan versions', async (t) => {
  const { llm, server } = await startLlmAppStack(t);
  let gates = 0;
  let releaseFirstTask!: () => void;
  const firstTaskMayFinish = new Promise<void>((resolve) => {
    releaseFirstTask = resolve;
  });
  llm.setHandler(async (request: RecordedLlmRequest): Promise<ScriptedReply> => {
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
              reason: request.promptText.includes('Focus on cost') ? 'steered' : 'not steered',
              next_phase: {
                name: 'deepen',
                tasks: [plannedTask('deepen', 'researcher', { agent: 'explore' })],
              },
            },
          }
        : { object: { decision: 'complete', reason: 'done', next_phase: null } };
    }
    const name = /Your task \(([^)]+)\)/.exec(request.promptText)?.[1] ?? 'unknown';
    // The first agent waits until the test has sent its steering message.
    if (name === 'explore') await firstTaskMayFinish;
    return { text: `output of ${name}` };
  });

  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'Compare hosting options', strategy: 'adaptive' },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id;
  const steer = await requestJson(`${server.url}/v1/sessions/${id}/messages`, {
    method: 'POST',
    body: { message: 'Focus on cost' },
  });
  assert.equal(steer.status, 202, JSON.stringify(steer.body));
  releaseFirstTask();

  const session = await waitForSession<{
    status: string;
    error: string | null;
    result: string | null;
    tasks: Array<{ name: string; kind: string }>;
  }>(server.url, id);
  assert.equal(session.status, 'completed', session.error ?? '');
  assert.equal(session.result, 'Final synthesis');
  assert.deepEqual(
    session.tasks.map((task) => task.name),
    [
      'orchestrator:plan',
      'explore',
      'orchestrator:phase-gate-1',
      'deepen',
      'orchestrator:phase-gate-2',
      'orchestrator:synthesis',
    ],
  );
  const gatePrompt =
    llm.requests.find((r) => r.promptText.includes('has finished. Outputs so far'))?.promptText ?? '';
  assert.match(gatePrompt, /Messages from the user \(follow them\):\n- Focus on cost/);

  const plans = await requestJson<{ items: Array<{ version: number; diff: { added: string[] } | null }> }>(
    `${server.url}/v1/sessions/${id}/plans`,
  );
  assert.equal(plans.status, 200);
  assert.deepEqual(
    plans.body.items.map((item) => item.version),
    [1, 2],
  );
  assert.deepEqual(plans.body.items[1]?.diff?.added, ['deepen']);

  const approve = await requestJson<{ code: string }>(`${server.url}/v1/sessions/${id}/approve`, {
    method: 'POST',
    body: {},
  });
  assert.equal(approve.status, 409);
  assert.equal(approve.body.code, 'INVALID_STATE');
});

test("a tenant's custom role can be named in explicit agents", async (t) => {
  const { llm, server } = await startLlmAppStack(t);
  llm.setHandler((request) => ({
    text: request.promptText.includes('legal reviewer') ? 'legal answer' : 'other',
  }));
  const role = await requestJson(`${server.url}/v1/roles`, {
    method: 'POST',
    body: {
      name: 'legal_reviewer',
      description: 'Reviews terms for legal risk.',
      instructions: 'You are a legal reviewer. Find legal risks and propose fixes.',
    },
  });
  assert.equal(role.status, 201, JSON.stringify(role.body));
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'Review the terms', agents: [{ role: 'legal_reviewer', task: 'Review section 3' }] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const session = await waitForSession<{ status: string; error: string | null; result: string | null }>(
    server.url,
    created.body.id,
  );
  assert.equal(session.status, 'completed', session.error ?? '');
  assert.equal(session.result, 'legal answer');
});
