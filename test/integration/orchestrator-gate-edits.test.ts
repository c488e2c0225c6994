// Edits at an adaptive phase gate that would leave the session with nothing to run, or add work to a
// phase that already ran, are refused with INVALID_PLAN (the plan still waits); before, the first left
// the session `running` for ever and the second brought back the phase the person had removed.
// SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson } from '../fixtures/server.ts';

interface SessionView {
  status: string;
  error: string | null;
  planVersion: number;
  approval: { pending: boolean; pendingPhase: number | null };
  plan: {
    phases: Array<{ name: string; tasks: Array<{ name: string; role: string; instructions: string }> }>;
  };
  tasks: Array<{ name: string; status: string }>;
}

interface Problem {
  code: string;
  details: string[];
}

/** The earlier phase as it ran, in the edited-plan format. */
const RAN = {
  name: 'explore',
  tasks: [{ name: 'survey', role: 'researcher', instructions: 'Work on survey' }],
};

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`edits at a phase gate (${store})`, { timeout: 120_000 }, () => {
    test('nothing left to run, or a new task in a phase that ran, is refused; a valid edit runs', async (t) => {
      const stack = await startOrchestratorStack(t, { store });
      let gates = 0;
      stack.llm.setHandler((request) => {
        switch (llmRequestKind(request)) {
          case 'plan':
            return {
              object: {
                rationale: 'r',
                phases: [{ name: 'explore', tasks: [plannedTask('survey', 'researcher')] }],
              },
            };
          case 'gate':
            gates += 1;
            return gates === 1
              ? {
                  object: {
                    decision: 'continue',
                    reason: 'deepen',
                    next_phase: {
                      name: 'deepen',
                      tasks: [plannedTask('deepen', 'researcher', { agent: 'survey' })],
                    },
                  },
                }
              : { object: { decision: 'complete', reason: 'met', next_phase: null } };
          case 'synthesis':
            return { text: 'The answer.' };
          default:
            return { text: '## Summary\nDone.' };
        }
      });
      const url = stack.server.url;
      const id = await stack.submit({ objective: 'Research it', strategy: 'adaptive', approval: 'required' });
      await stack.wait(id, (session) => session.status === 'awaiting_approval');
      assert.equal(
        (await requestJson(`${url}/v1/sessions/${id}/approve`, { method: 'POST', body: {} })).status,
        200,
      );
      const atGate = await stack.wait<SessionView>(
        id,
        (session) => session.status === 'awaiting_approval' && session.approval.pendingPhase === 1,
      );
      const approve = (plan: unknown) =>
        requestJson<Problem>(`${url}/v1/sessions/${id}/approve`, { method: 'POST', body: { plan } });

      const nothingLeft = await approve({ phases: [RAN] });
      assert.equal(nothingLeft.status, 400, JSON.stringify(nothingLeft.body));
      assert.equal(nothingLeft.body.code, 'INVALID_PLAN');
      assert.match(nothingLeft.body.details.join('\n'), /no task left to run/);

      const intoEarlier = await approve({
        phases: [{ ...RAN, tasks: [...RAN.tasks, { name: 'extra', role: 'analyst', instructions: 'More' }] }],
      });
      assert.equal(intoEarlier.status, 400, JSON.stringify(intoEarlier.body));
      assert.match(
        intoEarlier.body.details.join('\n'),
        /task "extra" is new but in phase 0 \("explore"\), which has already run/,
      );

      const unchanged = await stack.wait<SessionView>(id, () => true);
      assert.equal(unchanged.status, 'awaiting_approval');
      assert.equal(unchanged.planVersion, atGate.planVersion, 'a refused edit stores no version');

      const edited = await approve({
        phases: [
          RAN,
          { name: 'wrap', tasks: [{ name: 'wrap', role: 'documenter', instructions: 'Write it up' }] },
        ],
      });
      assert.equal(edited.status, 200, JSON.stringify(edited.body));
      const done = await stack.wait<SessionView>(id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.deepEqual(
        done.tasks.map((task) => [task.name, task.status]),
        [
          ['orchestrator:plan', 'succeeded'],
          ['survey', 'succeeded'],
          ['orchestrator:phase-gate-1', 'succeeded'],
          ['wrap', 'succeeded'],
          ['orchestrator:phase-gate-2', 'succeeded'],
          ['orchestrator:synthesis', 'succeeded'],
        ],
      );
    });
  });
}
