// A budget stop is recognised by its error code, never by the text of a task's error: a runner
// whose error output merely reads like a budget stop fails its task like any other failure.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';

describe('budget stops are recognised by code', { timeout: 60_000 }, () => {
  const harnesses: Harness[] = [];
  after(async () => {
    for (const h of harnesses) await h.close();
  });

  async function runFailing(error: Error) {
    const llm: AgentRuntime = {
      kind: 'fake-llm',
      run: async () => {
        throw error;
      },
    };
    const h = await createHarness({ llm, maxAttempts: 1 });
    harnesses.push(h);
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: 'budget code',
      agents: [{ name: 'a', role: 'engineer', task: 't' }],
    });
    const detail = await h.waitForSession(session.id);
    const events = await h.allEvents(session.id);
    return { detail, result: events.find((event) => event.type === 'task.result') };
  }

  test('text that reads like a budget stop is an ordinary task failure', async () => {
    const { detail, result } = await runFailing(new Error('Budget exceeded: said the runner'));
    assert.equal(detail.status, 'failed');
    assert.ok(!detail.error?.startsWith('BUDGET_EXCEEDED'), detail.error ?? '');
    assert.equal(result?.data.code, undefined);
  });

  test("the runtime's budget stop (AppError BUDGET_EXCEEDED) fails the session for its budget", async () => {
    const { detail, result } = await runFailing(
      new AppError('BUDGET_EXCEEDED', 'Budget exceeded: maxTokens 10 reached'),
    );
    assert.equal(detail.status, 'failed');
    assert.equal(detail.error, 'BUDGET_EXCEEDED: maxTokens 10 reached');
    assert.equal(result?.data.code, 'BUDGET_EXCEEDED');
  });
});
