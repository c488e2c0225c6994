// An agent whose model keeps calling tools is not left without an answer: its last allowed model
// call offers no tool use (tool_choice "none"), so the task's result — what dependants and the
// synthesis read — is the model's answer instead of an empty text. Both wire formats, SQLite.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import type { RecordedLlmRequest, ScriptedReply } from '../fixtures/llm-server.ts';
import { startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { plannedTask } from '../fixtures/planned-task.ts';

interface SessionView {
  status: string;
  error: string | null;
  tasks: Array<{ name: string; status: string; result: string | null }>;
}

/** Whether the request lets the model call tools (OpenAI: tool_choice "none"; Anthropic: {type: "none"}). */
function toolsForbidden(request: RecordedLlmRequest): boolean {
  const choice = request.body.tool_choice as string | { type?: string } | undefined;
  return choice === 'none' || (typeof choice === 'object' && choice?.type === 'none');
}

for (const api of ['openai', 'anthropic'] as const) {
  describe(`an agent that keeps calling tools (${api})`, { timeout: 90_000 }, () => {
    test('gets a last call without tool use and its answer is the result', async (t) => {
      const stack = await startOrchestratorStack(t, { api, llm: { agentMessaging: true } });
      let calls = 0;
      stack.llm.setHandler((request): ScriptedReply => {
        switch (llmRequestKind(request)) {
          case 'plan':
            return {
              object: {
                rationale: 'r',
                phases: [
                  { name: 'one', tasks: [plannedTask('chatty', 'engineer'), plannedTask('peer', 'qa')] },
                ],
              },
            };
          case 'synthesis':
            return { text: 'The answer.' };
          default:
            if (!request.promptText.includes('Your task (chatty)')) return { text: '## Summary\nPeer done.' };
            calls += 1;
            if (toolsForbidden(request)) return { text: '## Summary\nChatty answer at last.' };
            return { toolCalls: [{ name: 'send_message', input: { to: 'peer', message: `note ${calls}` } }] };
        }
      });
      const id = await stack.submit({ objective: 'Talk a lot' });
      const done = await stack.wait<SessionView>(id);
      assert.equal(done.status, 'completed', done.error ?? '');
      const chatty = done.tasks.find((task) => task.name === 'chatty');
      assert.equal(chatty?.result, '## Summary\nChatty answer at last.');
      assert.equal(calls, 8, 'seven tool rounds, then the answer');
      const chattyRequests = stack.llm.requests.filter((request) =>
        request.promptText.includes('Your task (chatty)'),
      );
      assert.deepEqual(chattyRequests.map(toolsForbidden), [
        false,
        false,
        false,
        false,
        false,
        false,
        false,
        true,
      ]);
    });
  });
}
