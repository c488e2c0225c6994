// Session deadlines (budget.deadlineSeconds) hold while nothing else happens to a session: one
// waiting for approval, or running one long task, fails with BUDGET_EXCEEDED and its usage; a
// server restarted after the deadline passed expires it at start. Real app on SQLite.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MAX_DEADLINE_SECONDS } from '../../src/domain/budget.ts';
import { createDatabase } from '../../src/store/db.ts';
import { type ScriptedLlmServer, startLlmServer } from '../fixtures/llm-server.ts';
import { readAllEvents, requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';

interface SessionView {
  id: string;
  createdAt: string;
  status: string;
  error: string | null;
  usage: { inputTokens: number; costUsd: number };
  tasks: Array<{ name: string; status: string; error: string | null }>;
}

interface EventView {
  seq: number;
  type: string;
  data: Record<string, unknown>;
}

describe('session deadlines', { timeout: 90_000 }, () => {
  let llm: ScriptedLlmServer;
  let providers: Record<string, unknown>;

  before(async () => {
    // Approval needs the orchestrator, so a provider is configured; the tasks run on test runners.
    llm = await startLlmServer({ apiKey: 'k' });
    providers = { local: { type: 'openai-compatible', baseURL: llm.openaiBaseURL, model: 'm', apiKey: 'k' } };
  });
  after(async () => {
    await llm?.close();
  });

  async function submit(url: string, body: Record<string, unknown>): Promise<SessionView> {
    const created = await requestJson<SessionView>(`${url}/v1/sessions`, { method: 'POST', body });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    return created.body;
  }

  test('a session waiting for approval fails when its deadline passes', async (t) => {
    const server = await startTestServer({ config: { providers } });
    t.after(() => server.close());
    const session = await submit(server.url, {
      objective: 'Waits for a person',
      agents: [{ name: 'first', role: 'qa', task: 'say hi', runner: 'echo' }],
      approval: 'required',
      budget: { deadlineSeconds: 1 },
    });
    assert.equal(session.status, 'awaiting_approval');
    const done = await waitForSession<SessionView>(server.url, session.id, undefined, 15_000);
    assert.equal(done.status, 'failed');
    assert.match(done.error ?? '', /^BUDGET_EXCEEDED: deadline exceeded: \d+ s of 1 s$/);
    assert.deepEqual(
      done.tasks.map((task) => [task.name, task.status, task.error]),
      [['first', 'cancelled', done.error]],
    );
    const events = await readAllEvents<EventView>(server.url, session.id);
    const last = events.at(-1);
    assert.equal(last?.type, 'session.finished');
    assert.equal(last?.data.status, 'failed');
    assert.equal(last?.data.error, done.error);
    assert.deepEqual(last?.data.usage, { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costUsd: 0 });
    assert.ok(
      events.some(
        (event) =>
          event.type === 'session.status' &&
          event.data.from === 'awaiting_approval' &&
          event.data.to === 'failed',
      ),
    );
    // Counted like every other budget failure.
    const metrics = await fetch(`${server.url}/metrics`).then((response) => response.text());
    assert.match(metrics, /^maos_budget_rejections_total\{scope="session"\} 1$/m);
    // Approving afterwards is a clear conflict, not a restart of the session.
    const approve = await requestJson<{ code: string }>(`${server.url}/v1/sessions/${session.id}/approve`, {
      method: 'POST',
      body: {},
    });
    assert.equal(approve.status, 409);
    assert.equal(approve.body.code, 'INVALID_STATE');
  });

  test('a session whose one task runs past the deadline fails and the task is stopped', async (t) => {
    const server = await startTestServer({ config: { providers } });
    t.after(() => server.close());
    const session = await submit(server.url, {
      objective: 'Too slow',
      agents: [{ name: 'slow', role: 'qa', task: 'sleep', runner: 'sleep' }],
      budget: { deadlineSeconds: 1 },
    });
    const done = await waitForSession<SessionView>(server.url, session.id, undefined, 15_000);
    assert.equal(done.status, 'failed');
    assert.match(done.error ?? '', /^BUDGET_EXCEEDED: deadline exceeded/);
    const stopped = await waitForSession<SessionView>(
      server.url,
      session.id,
      (view) => view.tasks.every((task) => task.status === 'cancelled'),
      15_000,
    );
    assert.equal(stopped.status, 'failed');
  });

  test('a deadline too far to be shown as a date is refused, and nothing is stored', async (t) => {
    const server = await startTestServer({ config: { providers } });
    t.after(() => server.close());
    // Submission + 9e15 s is past the last date JavaScript holds: stored, every read of the session
    // (its `deadline`) failed with 500, the submit's answer first.
    const refused = await requestJson<{ code: string; detail: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'Forever',
        agents: [{ name: 'first', role: 'qa', task: 'say hi', runner: 'echo' }],
        budget: { deadlineSeconds: 9_000_000_000_000_000 },
      },
    });
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'VALIDATION_FAILED');
    assert.match(refused.body.detail, /deadlineSeconds/);
    const listed = await requestJson<{ items: unknown[] }>(`${server.url}/v1/sessions`);
    assert.deepEqual(listed.body.items, []);
    // The longest deadline taken is shown as its date, as is a retry's new one.
    const longest = await submit(server.url, {
      objective: 'Ten years',
      agents: [{ name: 'first', role: 'qa', task: 'say hi', runner: 'echo' }],
      budget: { deadlineSeconds: MAX_DEADLINE_SECONDS },
    });
    const shown = await requestJson<{ deadline: string }>(`${server.url}/v1/sessions/${longest.id}`);
    assert.equal(shown.status, 200, JSON.stringify(shown.body));
    assert.equal(
      Date.parse(shown.body.deadline),
      Date.parse(longest.createdAt) + MAX_DEADLINE_SECONDS * 1000,
    );
    await waitForSession<SessionView>(server.url, longest.id);
    const retry = await requestJson<{ code: string }>(`${server.url}/v1/sessions/${longest.id}/retry`, {
      method: 'POST',
      body: { rerun: ['first'], budget: { deadlineSeconds: MAX_DEADLINE_SECONDS + 1 } },
    });
    assert.equal(retry.status, 400, JSON.stringify(retry.body));
    assert.equal(retry.body.code, 'VALIDATION_FAILED');
  });

  test('a restarted server expires a session whose deadline passed while it was down', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'maos-deadline-restart-'));
    try {
      const first = await startTestServer({ dataDir, config: { providers } });
      let id: string;
      try {
        const session = await submit(first.url, {
          objective: 'Outlives its server',
          agents: [{ name: 'first', role: 'qa', task: 'say hi', runner: 'echo' }],
          approval: 'required',
          budget: { deadlineSeconds: 3600 },
        });
        id = session.id;
        const fresh = await requestJson<SessionView>(`${first.url}/v1/sessions/${id}`);
        assert.equal(fresh.body.status, 'awaiting_approval');
      } finally {
        await first.close();
      }
      // Two hours pass while no server runs: moved back in the store instead of waiting.
      const handle = createDatabase({ dataDir, store: { synchronous: 'normal', busyTimeoutMs: 5000 } });
      try {
        await handle.db
          .updateTable('sessions')
          .set((eb) => ({ created_at: eb('created_at', '-', 2 * 3600 * 1000) }))
          .where('id', '=', id)
          .execute();
      } finally {
        await handle.close();
      }
      const second = await startTestServer({ dataDir, config: { providers } });
      try {
        const done = await waitForSession<SessionView>(second.url, id, undefined, 15_000);
        assert.equal(done.status, 'failed');
        assert.match(done.error ?? '', /^BUDGET_EXCEEDED: deadline exceeded: 720\d s of 3600 s$/);
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
