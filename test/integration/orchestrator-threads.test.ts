// Threads as the orchestrator sees them: a session's phase gate gets the sessions of its thread
// submitted before it, not ones submitted later (those are not "earlier sessions" of the
// conversation, and the follow-up may even depend on this session's answer). SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson } from '../fixtures/server.ts';

interface SessionView {
  status: string;
  error: string | null;
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`thread summaries (${store})`, { timeout: 120_000 }, () => {
    test('a phase gate sees the earlier session of its thread, not a later one', async (t) => {
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
      const first = await stack.submit({ objective: 'FIRST objective', thread_id: 'conv-1' });
      assert.equal((await stack.wait<SessionView>(first)).status, 'completed');

      const middle = await stack.submit({
        objective: 'MIDDLE objective',
        thread_id: 'conv-1',
        strategy: 'adaptive',
        approval: 'required',
      });
      await stack.wait(middle, (session) => session.status === 'awaiting_approval');
      const later = await stack.submit({ objective: 'LATER objective', thread_id: 'conv-1' });
      assert.equal((await stack.wait<SessionView>(later)).status, 'completed');

      const approved = await requestJson(`${stack.server.url}/v1/sessions/${middle}/approve`, {
        method: 'POST',
        body: {},
      });
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      assert.equal((await stack.wait<SessionView>(middle)).status, 'completed');

      const gate = stack.llm.requests.find((request) => llmRequestKind(request) === 'gate');
      assert.ok(gate, 'the middle session had a phase gate');
      assert.match(gate.promptText, /Earlier objective \(completed\): FIRST objective/);
      assert.doesNotMatch(gate.promptText, /LATER objective/);
      // The later session itself planned with both earlier ones in mind.
      const laterPlan = stack.llm.requests.find(
        (request) => llmRequestKind(request) === 'plan' && request.promptText.includes('Objective:\nLATER'),
      );
      assert.match(laterPlan?.promptText ?? '', /FIRST objective[\s\S]*MIDDLE objective/);
    });
  });
}
