// A follow-up submitted while the earlier session of its thread still runs: the follow-up does not
// wait for it, and its planning is told that session has not finished and has no result yet, rather
// than reading "(running)" next to the objective as earlier work to build on. SQLite.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { plannedTask } from '../fixtures/planned-task.ts';

interface SessionView {
  status: string;
  error: string | null;
}

describe('a thread whose earlier session is still running', { timeout: 60_000 }, () => {
  test("the follow-up's plan prompt says that session has not finished", async (t) => {
    const stack = await startOrchestratorStack(t);
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    stack.llm.setHandler(async (request) => {
      switch (llmRequestKind(request)) {
        case 'plan':
          return {
            object: { rationale: 'r', phases: [{ name: 'one', tasks: [plannedTask('a', 'engineer')] }] },
          };
        case 'synthesis':
          return { text: 'The answer.' };
        default:
          await held;
          return { text: '## Summary\nDone.' };
      }
    });
    t.after(() => release());
    const first = await stack.submit({ objective: 'Build the API', thread_id: 'conv-run' });
    await stack.wait<SessionView>(first, (session) => session.status === 'running');
    const second = await stack.submit({ objective: 'Now add pagination', thread_id: 'conv-run' });
    await stack.wait<SessionView>(second, (session) => session.status === 'running');
    const prompt =
      stack.llm.requests.find(
        (request) => llmRequestKind(request) === 'plan' && request.promptText.includes('Now add pagination'),
      )?.promptText ?? '';
    assert.match(
      prompt,
      /- Earlier objective \(running, not finished: its result is not known yet, do not assume its work is done\): Build the API/,
    );
    release();
    assert.equal((await stack.wait<SessionView>(first)).status, 'completed');
    assert.equal((await stack.wait<SessionView>(second)).status, 'completed');
  });
});
