// The session controls on PostgreSQL with two replicas: a deadline ends a session waiting for
// approval (the sweep is single-flight across replicas, the session fails once), a steering message
// posted to one replica is a `user.message` event in the log read from the other, and the session
// document shows approval, budget, deadline and thread.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ScriptedLlmServer, startLlmServer } from '../fixtures/llm-server.ts';
import { markPlanOrchestrated } from '../fixtures/orchestrated-plan.ts';
import { useReplicaSuite } from '../fixtures/replica-suite.ts';
import { readAllEvents, requestJson, type TestServer, waitForSession } from '../fixtures/server.ts';

interface SessionView {
  id: string;
  status: string;
  error: string | null;
  approval: { mode: string; pending: boolean; pendingPhase: number | null };
  budget: { deadlineSeconds: number | null } | null;
  deadline: string | null;
  threadId: string | null;
}

describe('session controls on PostgreSQL', { timeout: 120_000 }, () => {
  const suite = useReplicaSuite();
  let llm: ScriptedLlmServer;
  let first: TestServer;
  let second: TestServer;

  before(async () => {
    llm = await startLlmServer({ apiKey: 'k' });
    const config = {
      store: { url: suite.database.url, synchronous: 'normal', poolSize: 5 },
      providers: {
        local: { type: 'openai-compatible', baseURL: llm.openaiBaseURL, model: 'm', apiKey: 'k' },
      },
    };
    first = await suite.start({ config });
    second = await suite.start({ config });
  });
  after(async () => {
    await llm?.close();
  });

  test('deadline while waiting for approval, steering event and session document', async () => {
    const created = await requestJson<SessionView>(`${first.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'Waits on PostgreSQL',
        agents: [{ name: 'first', role: 'qa', task: 'say hi', runner: 'echo' }],
        approval: 'required',
        budget: { deadlineSeconds: 2 },
        thread_id: 'pg-thread',
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    const shown = await requestJson<SessionView>(`${second.url}/v1/sessions/${id}`);
    assert.deepEqual(shown.body.approval, { mode: 'required', pending: true, pendingPhase: 0 });
    assert.equal(shown.body.budget?.deadlineSeconds, 2);
    assert.equal(shown.body.threadId, 'pg-thread');
    assert.ok(shown.body.deadline);

    // Its agents were given; marked as planned by the orchestrator, which reads steering messages.
    await markPlanOrchestrated(first.app.database.db, id);
    const steer = await requestJson(`${first.url}/v1/sessions/${id}/messages`, {
      method: 'POST',
      body: { message: 'Hurry' },
    });
    assert.equal(steer.status, 202, JSON.stringify(steer.body));

    const done = await waitForSession<SessionView>(second.url, id, undefined, 20_000);
    assert.equal(done.status, 'failed');
    assert.match(done.error ?? '', /^BUDGET_EXCEEDED: deadline exceeded: \d+ s of 2 s$/);
    assert.deepEqual(done.approval, { mode: 'required', pending: false, pendingPhase: null });

    const events = await readAllEvents<{ seq: number; type: string; data: Record<string, unknown> }>(
      second.url,
      id,
    );
    const steering = events.filter((event) => event.type === 'user.message');
    assert.deepEqual(
      steering.map((event) => event.data.text),
      ['Hurry'],
    );
    // Two replicas sweep, one session end: exactly one session.finished.
    assert.equal(events.filter((event) => event.type === 'session.finished').length, 1);
    assert.equal(events.at(-1)?.type, 'session.finished');
  });
});
