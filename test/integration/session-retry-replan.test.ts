// A retry of a session whose orchestrator decision was never carried out makes that decision anew:
// the first plan named a custom role deleted while the orchestrator planned (no plan was applied),
// or a phase gate's next phase did (the phase was never written). The retry plans again with the
// roles of now and completes; it used to carry the planning task (or gate) over with its answer,
// apply it again and fail at once with the same INVALID_ROLE, and neither can be named in `rerun`.
// Real app over HTTP, scripted LLM server, SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type LlmRequestKind, llmRequestKind } from '../fixtures/llm-request-kind.ts';
import type { RecordedLlmRequest, ScriptedReply } from '../fixtures/llm-server.ts';
import { type OrchestratorStack, startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { POET_ROLE } from '../fixtures/poet-role.ts';
import { readAllEvents, requestJson } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

interface SessionView {
  status: string;
  error: string | null;
  retryOf: string | null;
  tasks: Array<{ name: string; status: string; role: string }>;
}

/** The answers once the role is gone: a plan of an engineer's task, a gate that completes. */
function answerWithoutPoet(request: RecordedLlmRequest): ScriptedReply {
  switch (llmRequestKind(request)) {
    case 'gate':
      return { object: { decision: 'complete', reason: 'met', next_phase: null } };
    case 'synthesis':
      return { text: 'The answer.' };
    case 'plan':
      return {
        object: { rationale: 'r', phases: [{ name: 'one', tasks: [plannedTask('draft', 'engineer')] }] },
      };
    default:
      return { text: '## Summary\nDone.' };
  }
}

/**
 * Creates the `poet` role; the first request of `kind` deletes it (the orchestrator has read the
 * roles and waits for this answer) and answers with `answer`, naming it; all others answer alike
 * without it.
 */
async function deleteRoleWhile(
  stack: OrchestratorStack,
  kind: LlmRequestKind,
  answer: object,
): Promise<void> {
  const created = await requestJson(`${stack.server.url}/v1/roles`, { method: 'POST', body: POET_ROLE });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  let deleted = false;
  stack.llm.setHandler(async (request) => {
    if (llmRequestKind(request) !== kind || deleted) return answerWithoutPoet(request);
    deleted = true;
    const response = await requestJson(`${stack.server.url}/v1/roles/poet`, { method: 'DELETE' });
    assert.equal(response.status, 204);
    return { object: answer };
  });
}

const count = (stack: OrchestratorStack, kind: LlmRequestKind) =>
  stack.llm.requests.filter((request) => llmRequestKind(request) === kind).length;

async function retry(stack: OrchestratorStack, id: string): Promise<string> {
  const retried = await requestJson<{ id: string }>(`${stack.server.url}/v1/sessions/${id}/retry`, {
    method: 'POST',
    body: {},
  });
  assert.equal(retried.status, 201, JSON.stringify(retried.body));
  return retried.body.id;
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`retrying a session whose plan named a role deleted while the orchestrator planned (${store})`, {
    timeout: 120_000,
  }, () => {
    test('the first plan: the retry plans anew with the roles of now and completes', async (t) => {
      const stack = await startOrchestratorStack(t, { store });
      await deleteRoleWhile(stack, 'plan', {
        rationale: 'r',
        phases: [{ name: 'one', tasks: [plannedTask('verse', 'poet')] }],
      });
      const id = await stack.submit({ objective: 'Write a poem' });
      const failed = await stack.wait<SessionView>(id);
      assert.equal(failed.status, 'failed');
      assert.match(failed.error ?? '', /^INVALID_ROLE: The first plan names role 'poet'/);
      assert.equal(count(stack, 'plan'), 1);

      const retryId = await retry(stack, id);
      const done = await stack.wait<SessionView>(retryId);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.equal(done.retryOf, id);
      assert.equal(count(stack, 'plan'), 2, 'the retry asked the orchestrator for a plan again');
      const [first, replan] = stack.llm.requests.filter((request) => llmRequestKind(request) === 'plan');
      assert.ok(first?.promptText.includes('poet'), 'the first plan was offered the role');
      assert.ok(replan && !replan.promptText.includes('poet'), 'planned with the roles of now');
      assert.deepEqual(
        done.tasks.filter((task) => task.role !== 'orchestrator').map((task) => [task.name, task.status]),
        [['draft', 'succeeded']],
      );
      const events = await readAllEvents<{ seq: number; type: string; data: { carried?: string[] } }>(
        stack.server.url,
        retryId,
      );
      assert.deepEqual(events[0]?.data.carried, [], 'the planning task was not carried over');
    });

    test('a phase gate: the retry decides the next phase again and completes', async (t) => {
      const stack = await startOrchestratorStack(t, { store });
      await deleteRoleWhile(stack, 'gate', {
        decision: 'continue',
        reason: 'verse next',
        next_phase: { name: 'two', tasks: [plannedTask('verse', 'poet')] },
      });
      const id = await stack.submit({ objective: 'Write a poem', strategy: 'adaptive' });
      const failed = await stack.wait<SessionView>(id);
      assert.equal(failed.status, 'failed');
      assert.match(failed.error ?? '', /^INVALID_ROLE: The next phase names role 'poet'/);
      const agentsBefore = count(stack, 'agent');
      assert.equal(count(stack, 'gate'), 1);

      const retryId = await retry(stack, id);
      const done = await stack.wait<SessionView>(retryId);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.equal(count(stack, 'gate'), 2, 'the retry asked the phase gate again');
      assert.equal(count(stack, 'plan'), 1, 'the applied first plan was kept');
      assert.equal(count(stack, 'agent'), agentsBefore, 'the first phase was carried over, not run again');
      assert.ok(done.tasks.some((task) => task.name === 'draft' && task.status === 'succeeded'));
      assert.ok(!done.tasks.some((task) => task.role === 'poet'));
    });
  });
}
