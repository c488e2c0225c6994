// A phase gate that answers `complete` with a placeholder in `next_phase` (`{"name": "", "tasks": []}`
// instead of null, as models asked for every field by strict structured outputs often write) has
// decided: the session goes on to its synthesis without a repair round. Read as the schema says,
// the placeholder was repaired, and a model that kept writing it failed the session with
// INVALID_PLAN after all its work was done. Both wire formats.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { plannedTask } from '../fixtures/planned-task.ts';

interface SessionView {
  status: string;
  error: string | null;
  result: string | null;
  tasks: Array<{ name: string; status: string }>;
}

const PLACEHOLDERS = [
  { name: '', tasks: [] },
  {
    name: 'none',
    tasks: [{ name: '', role: '', instructions: '', depends_on: [], deliverables: [], agent: null }],
  },
];

for (const api of ['openai', 'anthropic'] as const) {
  describe(`a phase gate that completes with a placeholder next phase (${api})`, { timeout: 60_000 }, () => {
    for (const [index, placeholder] of PLACEHOLDERS.entries()) {
      test(`is read as complete: no repair round, the synthesis is the result (placeholder ${index + 1})`, async (t) => {
        const stack = await startOrchestratorStack(t, { api, llm: { planner: { maxRepairs: 1 } } });
        stack.llm.setHandler((request) => {
          switch (llmRequestKind(request)) {
            case 'plan':
              return {
                object: { rationale: 'r', phases: [{ name: 'one', tasks: [plannedTask('a', 'engineer')] }] },
              };
            case 'gate':
              return { object: { decision: 'complete', reason: 'All done.', next_phase: placeholder } };
            case 'synthesis':
              return { text: 'The answer.' };
            default:
              return { text: '## Summary\nDone.' };
          }
        });
        const id = await stack.submit({ objective: 'Build the thing in phases', strategy: 'adaptive' });
        const done = await stack.wait<SessionView>(id);
        assert.equal(done.status, 'completed', done.error ?? '');
        assert.equal(done.result, 'The answer.');
        assert.deepEqual(
          done.tasks.map((task) => [task.name, task.status]),
          [
            ['orchestrator:plan', 'succeeded'],
            ['a', 'succeeded'],
            ['orchestrator:phase-gate-1', 'succeeded'],
            ['orchestrator:synthesis', 'succeeded'],
          ],
        );
        assert.equal(stack.llm.requests.filter((request) => llmRequestKind(request) === 'gate').length, 1);
      });
    }

    test('a continue with a placeholder next phase is still repaired', async (t) => {
      const stack = await startOrchestratorStack(t, { api, llm: { planner: { maxRepairs: 1 } } });
      stack.llm.setHandler((request) => {
        switch (llmRequestKind(request)) {
          case 'plan':
            return {
              object: { rationale: 'r', phases: [{ name: 'one', tasks: [plannedTask('a', 'engineer')] }] },
            };
          case 'gate':
            return { object: { decision: 'continue', reason: 'More.', next_phase: { name: '', tasks: [] } } };
          default:
            return { text: '## Summary\nDone.' };
        }
      });
      const id = await stack.submit({ objective: 'Build the thing in phases', strategy: 'adaptive' });
      const done = await stack.wait<SessionView>(id);
      assert.equal(done.status, 'failed');
      assert.match(done.error ?? '', /^INVALID_PLAN: .*next_phase\.tasks/);
      assert.equal(stack.llm.requests.filter((request) => llmRequestKind(request) === 'gate').length, 2);
    });
  });
}
