// A phase gate whose answer stays invalid after the repairs ends the session with the same stable
// code as a first plan that does (`INVALID_PLAN: …`), which clients match on; on SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { plannedTask } from '../fixtures/planned-task.ts';

interface SessionView {
  status: string;
  error: string | null;
  tasks: Array<{ name: string; status: string }>;
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`a phase gate that stays invalid (${store})`, { timeout: 90_000 }, () => {
    test('ends the session failed with an error that starts with INVALID_PLAN', async (t) => {
      const stack = await startOrchestratorStack(t, { store, llm: { planner: { maxRepairs: 1 } } });
      stack.llm.setHandler((request) => {
        switch (llmRequestKind(request)) {
          case 'plan':
            return {
              object: { rationale: 'r', phases: [{ name: 'one', tasks: [plannedTask('a', 'engineer')] }] },
            };
          case 'gate':
            return { text: 'We are done here, I think.' };
          case 'synthesis':
            return { text: 'never' };
          default:
            return { text: '## Summary\nDone.' };
        }
      });
      const id = await stack.submit({ objective: 'Build the thing in phases', strategy: 'adaptive' });
      const done = await stack.wait<SessionView>(id);
      assert.equal(done.status, 'failed');
      assert.match(
        done.error ?? '',
        /^INVALID_PLAN: The orchestrator did not produce a valid plan after 2 attempt\(s\): the answer is not valid JSON/,
      );
      assert.deepEqual(
        done.tasks.map((task) => [task.name, task.status]),
        [
          ['orchestrator:plan', 'succeeded'],
          ['a', 'succeeded'],
          ['orchestrator:phase-gate-1', 'failed'],
        ],
      );
      assert.equal(stack.llm.requests.filter((request) => llmRequestKind(request) === 'gate').length, 2);
    });
  });
}
