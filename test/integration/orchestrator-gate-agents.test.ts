// The agents a phase gate may reuse are the LLM agents that worked, as for an edited plan: a command
// agent (a runner task added at approval) is not offered, and a gate that names one is repaired,
// so no LLM task inherits a command's output as its own earlier answer. SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson } from '../fixtures/server.ts';

interface SessionView {
  status: string;
  error: string | null;
  tasks: Array<{ name: string; status: string; agentId: string | null }>;
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`agents a phase gate may reuse (${store})`, { timeout: 120_000 }, () => {
    test('a runner task’s agent is not offered, and naming it is repaired', async (t) => {
      const stack = await startOrchestratorStack(t, { store });
      let gates = 0;
      stack.llm.setHandler((request) => {
        switch (llmRequestKind(request)) {
          case 'plan':
            return {
              object: { rationale: 'r', phases: [{ name: 'one', tasks: [plannedTask('a', 'engineer')] }] },
            };
          case 'gate': {
            gates += 1;
            const reuse = gates === 1 ? 'checks' : null;
            return gates <= 2
              ? {
                  object: {
                    decision: 'continue',
                    reason: 'verify',
                    next_phase: { name: 'verify', tasks: [plannedTask('verify', 'qa', { agent: reuse })] },
                  },
                }
              : { object: { decision: 'complete', reason: 'met', next_phase: null } };
          }
          case 'synthesis':
            return { text: 'The answer.' };
          default:
            return { text: '## Summary\nDone.' };
        }
      });
      const url = stack.server.url;
      const id = await stack.submit({
        objective: 'Build and check',
        strategy: 'adaptive',
        approval: 'required',
      });
      await stack.wait(id, (session) => session.status === 'awaiting_approval');
      const approved = await requestJson(`${url}/v1/sessions/${id}/approve`, {
        method: 'POST',
        body: {
          plan: {
            phases: [
              {
                name: 'one',
                tasks: [
                  { name: 'a', role: 'engineer', instructions: 'Work on a' },
                  { name: 'checks', role: 'qa', instructions: 'RUNNER-TASK', runner: 'echo' },
                ],
              },
            ],
          },
        },
      });
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      await stack.wait(id, (session) => session.status === 'awaiting_approval');
      const gateRequests = stack.llm.requests.filter((request) => llmRequestKind(request) === 'gate');
      assert.equal(gateRequests.length, 2, 'the reuse of the command agent was repaired');
      assert.match(gateRequests[0]?.promptText ?? '', /Existing agents[^\n]*\n- a \(engineer\)\n\n/);
      assert.match(gateRequests[1]?.promptText ?? '', /task "verify" reuses unknown agent "checks"/);
      assert.equal(
        (await requestJson(`${url}/v1/sessions/${id}/approve`, { method: 'POST', body: {} })).status,
        200,
      );
      const done = await stack.wait<SessionView>(id);
      assert.equal(done.status, 'completed', done.error ?? '');
      const agentOf = (name: string) => done.tasks.find((task) => task.name === name)?.agentId;
      assert.notEqual(agentOf('verify'), agentOf('checks'));
      const verify = stack.llm.requests.find((request) => request.promptText.includes('Your task (verify)'));
      assert.ok(verify);
      const roles = (verify.body.messages as Array<{ role: string }>).map((message) => message.role);
      assert.deepEqual(
        roles,
        ['system', 'user'],
        'a new agent: no earlier turn (the command output is a dependency)',
      );
    });

    test('agents made in one transaction are listed in plan order, on both stores', async (t) => {
      const stack = await startOrchestratorStack(t, { store });
      stack.llm.setHandler((request) => {
        switch (llmRequestKind(request)) {
          case 'plan':
            return {
              object: {
                rationale: 'r',
                phases: [
                  {
                    name: 'one',
                    tasks: [
                      plannedTask('zeta', 'engineer'),
                      plannedTask('alpha', 'engineer'),
                      plannedTask('mid', 'engineer'),
                    ],
                  },
                ],
              },
            };
          case 'gate':
            return { object: { decision: 'complete', reason: 'met', next_phase: null } };
          case 'synthesis':
            return { text: 'The answer.' };
          default:
            return { text: '## Summary\nDone.' };
        }
      });
      const id = await stack.submit({ objective: 'Three at once', strategy: 'adaptive' });
      const done = await stack.wait<SessionView>(id);
      assert.equal(done.status, 'completed', done.error ?? '');
      const gate = stack.llm.requests.find((request) => llmRequestKind(request) === 'gate');
      assert.match(
        gate?.promptText ?? '',
        /Existing agents[^\n]*\n- zeta \(engineer\)\n- alpha \(engineer\)\n- mid \(engineer\)\n\n/,
      );
    });
  });
}
