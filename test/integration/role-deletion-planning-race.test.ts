// A custom role deleted after the orchestrator checked it and before its plan's tasks are written:
// the scripted LLM deletes the role (over HTTP, on the other replica on PostgreSQL) while the
// planner waits for its answer, then answers with a task of the role. The plan's roles are checked
// again where its tasks are written, so the session fails with INVALID_ROLE and no task of the
// deleted role is ever stored (it used to be stored and fail when it started). First plan and
// phase gate; SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type LlmRequestKind, llmRequestKind } from '../fixtures/llm-request-kind.ts';
import type { RecordedLlmRequest, ScriptedReply } from '../fixtures/llm-server.ts';
import { type OrchestratorStack, startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { POET_ROLE } from '../fixtures/poet-role.ts';
import { requestJson } from '../fixtures/server.ts';

interface SessionView {
  status: string;
  error: string | null;
  tasks: Array<{ name: string; status: string; role: string }>;
}

const POET = POET_ROLE;

/** Creates the role, then answers `kind` by deleting it first (asserting the 204) and then with `answer`. */
async function deleteRoleWhile(
  stack: OrchestratorStack,
  kind: LlmRequestKind,
  answer: object,
  otherAnswers: (request: RecordedLlmRequest) => ScriptedReply,
): Promise<{ deletes: number[] }> {
  const created = await requestJson(`${stack.server.url}/v1/roles`, { method: 'POST', body: POET });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const deletes: number[] = [];
  stack.llm.setHandler(async (request) => {
    if (llmRequestKind(request) !== kind || deletes.length > 0) return otherAnswers(request);
    // The planner has read the roles and waits for this answer: the delete lands in the window.
    const deleted = await requestJson(`${stack.at(1)}/v1/roles/poet`, { method: 'DELETE' });
    deletes.push(deleted.status);
    return { object: answer };
  });
  return { deletes };
}

function answerOthers(request: RecordedLlmRequest): ScriptedReply {
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

for (const store of ['sqlite', 'postgres'] as const) {
  const replicas = store === 'postgres' ? 2 : 1;
  describe(`a custom role deleted while the orchestrator plans with it (${store})`, {
    timeout: 120_000,
  }, () => {
    test('the first plan: the session fails with INVALID_ROLE and stores no task of the role', async (t) => {
      const stack = await startOrchestratorStack(t, { store, replicas });
      const race = await deleteRoleWhile(
        stack,
        'plan',
        { rationale: 'r', phases: [{ name: 'one', tasks: [plannedTask('verse', 'poet')] }] },
        answerOthers,
      );
      const id = await stack.submit({ objective: 'Write a poem' });
      const done = await stack.wait<SessionView>(id);
      assert.deepEqual(race.deletes, [204], 'the delete went through while the plan was being made');
      assert.equal(done.status, 'failed');
      assert.match(
        done.error ?? '',
        /^INVALID_ROLE: The first plan names role 'poet' \(task verse\), deleted while the orchestrator was planning/,
      );
      assert.deepEqual(
        done.tasks.filter((task) => task.role === 'poet'),
        [],
        'no task of the deleted role was stored',
      );
      assert.equal(
        stack.llm.requests.filter((request) => llmRequestKind(request) === 'agent').length,
        0,
        'no agent ran',
      );
    });

    test('a phase gate: the session fails with INVALID_ROLE and stores no task of the role', async (t) => {
      const stack = await startOrchestratorStack(t, { store, replicas });
      const race = await deleteRoleWhile(
        stack,
        'gate',
        {
          decision: 'continue',
          reason: 'verse next',
          next_phase: { name: 'two', tasks: [plannedTask('verse', 'poet')] },
        },
        answerOthers,
      );
      const id = await stack.submit({ objective: 'Write a poem', strategy: 'adaptive' });
      const done = await stack.wait<SessionView>(id);
      assert.deepEqual(race.deletes, [204], 'the delete went through while the gate was deciding');
      assert.equal(done.status, 'failed');
      assert.match(
        done.error ?? '',
        /^INVALID_ROLE: The next phase names role 'poet' \(task verse\), deleted while the orchestrator was planning/,
      );
      assert.deepEqual(
        done.tasks.filter((task) => task.role === 'poet'),
        [],
        'no task of the deleted role was stored',
      );
      assert.ok(
        done.tasks.some((task) => task.name === 'draft' && task.status === 'succeeded'),
        'the first phase ran',
      );
    });
  });
}
