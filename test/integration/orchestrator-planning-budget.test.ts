// A session budget (here a tenant default) smaller than what the orchestrator's first answer costs:
// an answer that needs repair is not repaired once the budget is crossed — a repair round would
// multiply the overrun — and the session ends BUDGET_EXCEEDED with the rounds made charged. Real app
// over HTTP, scripted LLM server, SQLite.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import type { RecordedLlmRequest } from '../fixtures/llm-server.ts';
import { startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { plannedTask } from '../fixtures/planned-task.ts';

interface SessionView {
  status: string;
  error: string | null;
  usage: { inputTokens: number; outputTokens: number };
  tasks: Array<{ name: string; status: string }>;
}

const USAGE = { inputTokens: 500, outputTokens: 100 };
const count = (requests: readonly RecordedLlmRequest[], kind: string) =>
  requests.filter((request) => llmRequestKind(request) === kind).length;

describe('planning against a budget the first answer crosses', { timeout: 60_000 }, () => {
  test('an invalid first plan is not repaired: one call, BUDGET_EXCEEDED, the call charged', async (t) => {
    const stack = await startOrchestratorStack(t, {
      llm: { planner: { maxRepairs: 2 }, budgets: { default: { maxTokens: 100 } } },
    });
    stack.llm.setHandler((request) =>
      llmRequestKind(request) === 'plan'
        ? {
            object: { rationale: 'r', phases: [{ name: 'p', tasks: [plannedTask('a', 'wizard')] }] },
            usage: USAGE,
          }
        : { text: 'unexpected' },
    );
    const id = await stack.submit({ objective: 'Plan within a tiny budget' });
    const done = await stack.wait<SessionView>(id);
    assert.equal(done.status, 'failed');
    assert.match(done.error ?? '', /^BUDGET_EXCEEDED: token budget exceeded: 600 of 100 tokens used/);
    assert.equal(count(stack.llm.requests, 'plan'), 1, 'no repair round past the budget');
    assert.deepEqual([done.usage.inputTokens, done.usage.outputTokens], [500, 100]);
  });

  test('a phase gate answer that needs repair past the budget is not repaired either', async (t) => {
    const stack = await startOrchestratorStack(t, {
      llm: { planner: { maxRepairs: 2 }, budgets: { default: { maxTokens: 1500 } } },
    });
    stack.llm.setHandler((request) => {
      switch (llmRequestKind(request)) {
        case 'plan':
          return {
            object: { rationale: 'r', phases: [{ name: 'one', tasks: [plannedTask('a', 'engineer')] }] },
            usage: { inputTokens: 10, outputTokens: 10 },
          };
        case 'gate':
          return {
            object: {
              decision: 'continue',
              reason: 'more',
              next_phase: { name: 'two', tasks: [plannedTask('b', 'wizard')] },
            },
            usage: { inputTokens: 1500, outputTokens: 100 },
          };
        default:
          return { text: '## Summary\nDone.', usage: { inputTokens: 10, outputTokens: 10 } };
      }
    });
    const id = await stack.submit({ objective: 'Adapt within a budget', strategy: 'adaptive' });
    const done = await stack.wait<SessionView>(id);
    assert.equal(done.status, 'failed');
    assert.match(done.error ?? '', /^BUDGET_EXCEEDED: token budget exceeded/);
    assert.equal(count(stack.llm.requests, 'gate'), 1, 'no repair round past the budget');
  });
});
