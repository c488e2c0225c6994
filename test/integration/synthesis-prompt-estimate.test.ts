// A synthesis whose server reports no usage (or that is cut off, or stopped for the budget) is
// charged an estimate of its prompt: the prompt it sent, whose outputs are summarised to
// llm.planner.dependencyOutputChars each, not the agents' whole outputs. Real app over HTTP,
// scripted LLM server, SQLite.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SYNTHESIS_TASK_NAME } from '../../src/engine/planner-continuation.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import type { ScriptedReply } from '../fixtures/llm-server.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

interface TaskView {
  name: string;
  usage: { inputTokens: number; outputTokens: number };
}

test("a synthesis without reported usage is charged its prompt's estimate, not the agents' whole outputs", async (t) => {
  const { llm, server } = await startLlmAppStack(t);
  // Each agent writes 100,000 characters; the synthesis prompt shows at most 12,000 of each.
  const longOutput = 'finding '.repeat(12_500);
  llm.setHandler((request): ScriptedReply => {
    const kind = llmRequestKind(request);
    if (kind === 'plan') {
      return {
        object: {
          rationale: 'Two writers.',
          phases: [
            { name: 'work', tasks: [plannedTask('one', 'documenter'), plannedTask('two', 'documenter')] },
          ],
        },
      };
    }
    if (kind === 'synthesis') return { text: 'All done.', withoutUsage: true };
    return { text: longOutput };
  });
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'Write two long notes' },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const done = await waitForSession<{ status: string; error: string | null; tasks: TaskView[] }>(
    server.url,
    created.body.id,
  );
  assert.equal(done.status, 'completed', done.error ?? '');
  const request = llm.requests.find((recorded) => llmRequestKind(recorded) === 'synthesis');
  assert.ok(request);
  const messages = request.body.messages as Array<{ content: string }>;
  const promptChars = messages.reduce((sum, message) => sum + message.content.length, 0);
  assert.ok(promptChars < 30_000, `the prompt summarised the outputs (${promptChars} characters)`);
  const synthesis = done.tasks.find((task) => task.name === SYNTHESIS_TASK_NAME);
  assert.ok(synthesis);
  assert.equal(synthesis.usage.inputTokens, Math.ceil(promptChars / 4));
  assert.equal(synthesis.usage.outputTokens, Math.ceil('All done.'.length / 4));
});
