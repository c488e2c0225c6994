// An orchestrated session end to end over the Anthropic messages wire format: the plan and the phase
// gates come back through the forced `json` tool as Claude answers structured output, an approval
// waits at the plan and at the gate, a steering message reaches the gate, the reused agent sees its
// earlier turn, and the synthesis is the result. SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { wantsJsonTool } from '../fixtures/llm-wire-anthropic.ts';
import { startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson } from '../fixtures/server.ts';

interface SessionView {
  status: string;
  error: string | null;
  result: string | null;
  approval: { pending: boolean; pendingPhase: number | null };
  tasks: Array<{ name: string; status: string; agentId: string | null }>;
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`an adaptive session over the Anthropic wire format (${store})`, { timeout: 120_000 }, () => {
    test('plan and gate through the json tool, approvals, steering, agent reuse, synthesis', async (t) => {
      const stack = await startOrchestratorStack(t, { api: 'anthropic', store });
      let gates = 0;
      stack.llm.setHandler((request) => {
        switch (llmRequestKind(request)) {
          case 'plan':
            return {
              object: {
                rationale: 'r',
                phases: [{ name: 'sketch', tasks: [plannedTask('sketch', 'architect')] }],
              },
            };
          case 'gate':
            gates += 1;
            return gates === 1
              ? {
                  object: {
                    decision: 'continue',
                    reason: 'refine',
                    next_phase: {
                      name: 'refine',
                      tasks: [plannedTask('refine', 'architect', { agent: 'sketch' })],
                    },
                  },
                }
              : { object: { decision: 'complete', reason: 'met', next_phase: null } };
          case 'synthesis':
            return { text: 'One answer from Claude.' };
          default:
            return { text: request.promptText.includes('Your task (sketch)') ? 'SKETCH-OUTPUT' : 'refined' };
        }
      });
      const url = stack.server.url;
      const approve = () => requestJson(`${url}/v1/sessions/${id}/approve`, { method: 'POST', body: {} });
      const id = await stack.submit({
        objective: 'Design a service',
        strategy: 'adaptive',
        approval: 'required',
      });
      await stack.wait(id, (session) => session.status === 'awaiting_approval');
      const steer = await requestJson(`${url}/v1/sessions/${id}/messages`, {
        method: 'POST',
        body: { message: 'STEER: keep it small' },
      });
      assert.equal(steer.status, 202);
      assert.equal((await approve()).status, 200);
      await stack.wait<SessionView>(
        id,
        (session) => session.status === 'awaiting_approval' && session.approval.pendingPhase === 1,
      );
      assert.equal((await approve()).status, 200);
      const done = await stack.wait<SessionView>(id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.equal(done.result, 'One answer from Claude.');

      const structured = stack.llm.requests.filter((request) =>
        ['plan', 'gate'].includes(llmRequestKind(request)),
      );
      assert.equal(structured.length, 3);
      for (const request of structured) {
        assert.equal(request.api, 'anthropic');
        assert.ok(wantsJsonTool(request), 'structured output is asked for through the json tool');
      }
      assert.match(structured[1]?.promptText ?? '', /STEER: keep it small/);
      const agentOf = (name: string) => done.tasks.find((task) => task.name === name)?.agentId;
      assert.equal(agentOf('refine'), agentOf('sketch'));
      const refine = stack.llm.requests.find((request) => request.promptText.includes('Your task (refine)'));
      const turns = (refine?.body.messages ?? []) as Array<{ role: string; content: unknown }>;
      assert.deepEqual(
        turns.map((turn) => turn.role),
        ['user', 'assistant', 'user'],
      );
      assert.match(JSON.stringify(turns[1]?.content), /SKETCH-OUTPUT/);
    });
  });
}

test('a Claude model with native structured outputs: plan and synthesis over output_config', {
  timeout: 60_000,
}, async (t) => {
  // A model id the SDK knows to support structured outputs asks for them in `output_config`, not
  // through the json tool: the path a real Claude deployment takes.
  const stack = await startOrchestratorStack(t, { api: 'anthropic', model: 'claude-sonnet-4-5' });
  stack.llm.setHandler((request) => {
    switch (llmRequestKind(request)) {
      case 'plan':
        return {
          object: {
            rationale: 'r',
            phases: [{ name: 'design', tasks: [plannedTask('design', 'architect')] }],
          },
        };
      case 'synthesis':
        return { text: 'Native answer.' };
      default:
        return { text: 'designed' };
    }
  });
  const id = await stack.submit({ objective: 'Design a service' });
  const done = await stack.wait<SessionView>(id);
  assert.equal(done.status, 'completed', done.error ?? '');
  assert.equal(done.result, 'Native answer.');
  const plan = stack.llm.requests.find((request) => llmRequestKind(request) === 'plan');
  assert.ok(plan, 'a plan request');
  assert.equal(wantsJsonTool(plan), false);
  assert.equal((plan.body.output_config as { format?: { type?: string } }).format?.type, 'json_schema');
});
