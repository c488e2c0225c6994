// `llm.planner.maxPhases` bounds the phases the orchestrator itself may run (its phase gates), not a
// plan a person approved: an edit at approval may have more phases than it, every one of them runs,
// and no phase gate follows once the session's phases reach the limit (the synthesis does).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson } from '../fixtures/server.ts';

interface SessionView {
  status: string;
  error: string | null;
  tasks: Array<{ name: string; status: string; phase: number }>;
}

test('an approved edit with more phases than llm.planner.maxPhases runs them all, then synthesises', async (t) => {
  const stack = await startOrchestratorStack(t, { llm: { planner: { maxPhases: 2 } } });
  const asked: string[] = [];
  stack.llm.setHandler((request) => {
    const kind = llmRequestKind(request);
    asked.push(kind);
    switch (kind) {
      case 'plan':
        return {
          object: {
            rationale: 'r',
            phases: [{ name: 'explore', tasks: [plannedTask('survey', 'researcher')] }],
          },
        };
      case 'synthesis':
        return { text: 'The answer.' };
      default:
        return { text: '## Summary\nDone.' };
    }
  });
  const id = await stack.submit({ objective: 'Research it', strategy: 'adaptive', approval: 'required' });
  await stack.wait(id, (session) => session.status === 'awaiting_approval');
  const phase = (name: string) => ({
    name,
    tasks: [{ name, role: 'researcher', instructions: `Work on ${name}` }],
  });
  const approved = await requestJson(`${stack.server.url}/v1/sessions/${id}/approve`, {
    method: 'POST',
    body: { plan: { phases: [phase('explore'), phase('deepen'), phase('verify')] } },
  });
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  const done = await stack.wait<SessionView>(id);
  assert.equal(done.status, 'completed', done.error ?? '');
  assert.deepEqual(
    done.tasks.map((task) => [task.name, task.status]),
    [
      ['orchestrator:plan', 'succeeded'],
      ['explore', 'succeeded'],
      ['deepen', 'succeeded'],
      ['verify', 'succeeded'],
      ['orchestrator:synthesis', 'succeeded'],
    ],
  );
  assert.equal(asked.filter((kind) => kind === 'gate').length, 0, 'no phase gate past the limit');
});
