// GET /v1/sessions/:id serves the plan and tasks of finished sessions from memory: repeated reads
// answer the same document, and a change that touches the session row is never served stale.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';

interface Session {
  id: string;
  status: string;
  updatedAt: string;
  tasks: { name: string; status: string; result: string | null }[];
}

describe('session detail reads of finished sessions', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => server?.close());

  async function finishedSession(): Promise<Session> {
    const created = await requestJson<Session>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'cache',
        strategy: 'sequential',
        agents: ['architect', 'engineer'].map((role) => ({ role, task: `${role} step`, runner: 'echo' })),
      },
    });
    assert.equal(created.status, 201);
    return waitForSession<Session>(server.url, created.body.id);
  }

  test('repeated reads of a finished session answer the same document', async () => {
    const finished = await finishedSession();
    assert.equal(finished.status, 'completed');
    const first = await requestJson<Session>(`${server.url}/v1/sessions/${finished.id}`);
    const second = await requestJson<Session>(`${server.url}/v1/sessions/${finished.id}`);
    assert.equal(first.status, 200);
    assert.deepEqual(second.body, first.body);
    assert.deepEqual(
      first.body.tasks.map((task) => task.status),
      ['succeeded', 'succeeded'],
    );
  });

  test('a change that updates the session row is seen by the next read', async () => {
    const finished = await finishedSession();
    await requestJson(`${server.url}/v1/sessions/${finished.id}`); // cached now
    const db = server.app.database.db;
    const later = Date.parse(finished.updatedAt) + 1000;
    await db
      .updateTable('tasks')
      .set({ result: 'rewritten' })
      .where('session_id', '=', finished.id)
      .execute();
    await db.updateTable('sessions').set({ updated_at: later }).where('id', '=', finished.id).execute();
    const read = await requestJson<Session>(`${server.url}/v1/sessions/${finished.id}`);
    assert.equal(read.body.updatedAt, new Date(later).toISOString());
    assert.deepEqual(
      read.body.tasks.map((task) => task.result),
      ['rewritten', 'rewritten'],
    );
  });

  test('another tenant still gets 404 for a cached session', async () => {
    const finished = await finishedSession();
    await requestJson(`${server.url}/v1/sessions/${finished.id}`);
    const service = server.app.engine.service;
    await assert.rejects(service.getSession({ tenantId: 'other', principalId: 'x' }, finished.id), {
      code: 'SESSION_NOT_FOUND',
    });
  });
});
