// Many steering messages do not grow the orchestrator's prompts without bound: a phase gate and the
// synthesis see the newest messages that fit, after a note counting the older ones, so a chatty user
// cannot push a session past the model's context window. SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_STEERING_PROMPT_CHARS } from '../../src/engine/planner-prompts.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson } from '../fixtures/server.ts';

interface SessionView {
  status: string;
  error: string | null;
}

const MESSAGES = 40;
/** Each message is near the longest allowed (4000 characters): 40 of them are ~160k characters. */
const message = (i: number) => `correction ${i}: ${'keep it short '.repeat(280)}end`;

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`steering messages in orchestrator prompts (${store})`, { timeout: 120_000 }, () => {
    test('a gate and the synthesis get the newest messages within the bound', async (t) => {
      const stack = await startOrchestratorStack(t, { store });
      stack.llm.setHandler((request) => {
        switch (llmRequestKind(request)) {
          case 'plan':
            return {
              object: { rationale: 'r', phases: [{ name: 'one', tasks: [plannedTask('a', 'engineer')] }] },
            };
          case 'gate':
            return { object: { decision: 'complete', reason: 'met', next_phase: null } };
          case 'synthesis':
            return { text: 'The answer.' };
          default:
            return { text: '## Summary\nDone.' };
        }
      });
      const id = await stack.submit({ objective: 'Build it', strategy: 'adaptive', approval: 'required' });
      await stack.wait(id, (session) => session.status === 'awaiting_approval');
      for (let i = 0; i < MESSAGES; i += 1) {
        const sent = await requestJson(`${stack.server.url}/v1/sessions/${id}/messages`, {
          method: 'POST',
          body: { message: message(i) },
        });
        assert.equal(sent.status, 202, JSON.stringify(sent.body));
      }
      const approved = await requestJson(`${stack.server.url}/v1/sessions/${id}/approve`, {
        method: 'POST',
        body: {},
      });
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      const done = await stack.wait<SessionView>(id);
      assert.equal(done.status, 'completed', done.error ?? '');

      for (const kind of ['gate', 'synthesis'] as const) {
        const prompt =
          stack.llm.requests.find((request) => llmRequestKind(request) === kind)?.promptText ?? '';
        assert.ok(prompt.includes(message(MESSAGES - 1)), `${kind}: the newest message is shown`);
        assert.ok(!prompt.includes(message(0)), `${kind}: the oldest message is left out`);
        const shown = Array.from({ length: MESSAGES }, (_, i) => i).filter((i) =>
          prompt.includes(message(i)),
        );
        assert.match(
          prompt,
          new RegExp(`\\(${MESSAGES - shown.length} earlier message\\(s\\) from the user omitted`),
        );
        // The messages part stays within the bound (plus the rest of the prompt, a few thousand).
        assert.ok(
          prompt.length < MAX_STEERING_PROMPT_CHARS + 8_000,
          `${kind} prompt is ${prompt.length} characters`,
        );
      }
    });
  });
}
