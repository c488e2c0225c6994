// Approve, reject and cancel racing for one session waiting for approval, on PostgreSQL (READ
// COMMITTED, two replicas) and SQLite: exactly one decision wins, the losers get 409 INVALID_STATE,
// and the session ends in one consistent terminal state with one plan version per approval.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { readAllEvents, requestJson, waitForSession } from '../fixtures/server.ts';

interface SessionView {
  status: string;
  error: string | null;
  planVersion: number;
  tasks: Array<{ name: string; status: string }>;
}

const ROUNDS = 6;

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`approval races (${store})`, { timeout: 180_000 }, () => {
    test('approve, approve with an edit, reject and cancel at once: one wins, the session stays whole', async (t) => {
      const { llm, at } = await startOrchestratorStack(t, { store, replicas: store === 'postgres' ? 2 : 1 });
      llm.setHandler((request) => {
        switch (llmRequestKind(request)) {
          case 'plan':
            return {
              object: { rationale: 'r', phases: [{ name: 'one', tasks: [plannedTask('a', 'engineer')] }] },
            };
          case 'synthesis':
            return { text: 'The answer.' };
          default:
            return { text: '## Summary\nDone.', delayMs: 50 };
        }
      });

      for (let round = 0; round < ROUNDS; round += 1) {
        const created = await requestJson<{ id: string }>(`${at(0)}/v1/sessions`, {
          method: 'POST',
          body: { objective: `Race ${round}`, approval: 'required' },
        });
        assert.equal(created.status, 201);
        const id = created.body.id;
        await waitForSession<SessionView>(at(0), id, (session) => session.status === 'awaiting_approval');
        const edit = (name: string) => ({
          plan: {
            phases: [{ name: 'one', tasks: [{ name, role: 'engineer', instructions: `Do ${name}` }] }],
          },
        });
        const calls = [
          { kind: 'approve', path: 'approve', body: {} },
          { kind: 'approve', path: 'approve', body: edit('b') },
          { kind: 'approve', path: 'approve', body: edit('c') },
          { kind: 'reject', path: 'reject', body: { reason: 'no' } },
          { kind: 'cancel', path: 'cancel', body: {} },
        ];
        const answers = await Promise.all(
          calls.map((call, i) =>
            requestJson(`${at(i)}/v1/sessions/${id}/${call.path}`, { method: 'POST', body: call.body }),
          ),
        );
        const won = answers.filter((answer, i) => answer.status < 300 && calls[i]?.kind !== 'cancel');
        const decisions = answers.filter((answer) => answer.status === 409);
        for (const lost of decisions) {
          assert.equal((lost.body as { code: string }).code, 'INVALID_STATE');
        }
        const done = await waitForSession<SessionView>(at(1), id);
        const events = await readAllEvents<{ seq: number; type: string }>(at(0), id);
        const finished = events.filter((event) => event.type === 'session.finished');
        assert.equal(finished.length, 1, `round ${round}: one session.finished (${done.status})`);
        assert.equal(events.at(-1)?.type, 'session.finished', `round ${round}: finished is last`);
        const approvals = answers.filter(
          (answer, i) => answer.status === 200 && calls[i]?.kind === 'approve',
        );
        assert.ok(
          won.length <= 1,
          `round ${round}: at most one approve/reject won: ${JSON.stringify(answers.map((a) => a.status))}`,
        );
        const plans = await requestJson<{ items: unknown[] }>(`${at(0)}/v1/sessions/${id}/plans`);
        assert.ok(plans.body.items.length <= 1 + approvals.length, `round ${round}: plan versions`);
        if (done.status === 'completed') {
          assert.equal(approvals.length, 1);
          const agentTasks = done.tasks.filter((task) => !task.name.startsWith('orchestrator:'));
          assert.equal(agentTasks.length, 1, `round ${round}: one plan ran: ${JSON.stringify(done.tasks)}`);
        }
        for (const task of done.tasks) {
          assert.ok(
            ['succeeded', 'failed', 'cancelled'].includes(task.status),
            `round ${round}: ${task.name} ${task.status}`,
          );
        }
      }
    });
  });
}
