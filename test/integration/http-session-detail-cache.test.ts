// GET /v1/sessions/:id serves the plan and tasks of finished sessions from memory: repeated reads
// answer the same document, a change that touches the session row is never served stale, and a
// deleted session leaves nothing behind in memory.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deleteSessionOutputs, deleteSessionRecord } from '../../src/store/session-deletion.ts';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';

interface Session {
  id: string;
  status: string;
  updatedAt: string;
  usage: { inputTokens: number };
  tasks: { name: string; status: string; result: string | null; usage: { inputTokens: number } }[];
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

  test('spend charged in the millisecond the session ended in is seen by the next read', async () => {
    const finished = await finishedSession();
    await requestJson(`${server.url}/v1/sessions/${finished.id}`); // cached now
    // What a run the session's end stopped charges once it has wound down (task-ops.ts,
    // chargeUnappliedRun): its task and the session, here within the millisecond the session ended
    // in, so updated_at stays the same.
    const db = server.app.database.db;
    const [first] = finished.tasks;
    await db
      .updateTable('tasks')
      .set((eb) => ({ input_tokens: eb('input_tokens', '+', 400) }))
      .where('session_id', '=', finished.id)
      .where('name', '=', first!.name)
      .execute();
    await db
      .updateTable('sessions')
      .set((eb) => ({ input_tokens: eb('input_tokens', '+', 400) }))
      .where('id', '=', finished.id)
      .execute();
    const read = await requestJson<Session>(`${server.url}/v1/sessions/${finished.id}`);
    assert.equal(read.body.updatedAt, finished.updatedAt);
    assert.equal(read.body.usage.inputTokens, finished.usage.inputTokens + 400);
    assert.equal(read.body.tasks[0]!.usage.inputTokens, first!.usage.inputTokens + 400);
  });

  /**
   * Deletes the session's rows as a deletion does, runs `between`, then puts the same session row
   * back (same status and timestamps: what the cache compares) with other task results, and returns
   * the results the next read shows: the old ones only if the deleted session was still in memory.
   */
  async function resultsAfterRowsComeBack(
    finished: Session,
    between: () => Promise<void>,
  ): Promise<unknown[]> {
    const db = server.app.database.db;
    const row = await db
      .selectFrom('sessions')
      .selectAll()
      .where('id', '=', finished.id)
      .executeTakeFirstOrThrow();
    const plans = await db.selectFrom('plans').selectAll().where('session_id', '=', finished.id).execute();
    const agents = await db.selectFrom('agents').selectAll().where('session_id', '=', finished.id).execute();
    const tasks = await db.selectFrom('tasks').selectAll().where('session_id', '=', finished.id).execute();
    await between();
    await db.insertInto('sessions').values(row).execute();
    await db.insertInto('plans').values(plans).execute();
    await db.insertInto('agents').values(agents).execute();
    await db
      .insertInto('tasks')
      .values(tasks.map((task) => ({ ...task, result: 'not the deleted one' })))
      .execute();
    const read = await requestJson<Session>(`${server.url}/v1/sessions/${finished.id}`);
    assert.equal(read.status, 200);
    return read.body.tasks.map((task) => task.result);
  }

  test('nothing of a session deleted here stays in memory', async () => {
    const finished = await finishedSession();
    await requestJson(`${server.url}/v1/sessions/${finished.id}`); // cached now
    const results = await resultsAfterRowsComeBack(finished, async () => {
      const deleted = await requestJson(`${server.url}/v1/sessions/${finished.id}`, { method: 'DELETE' });
      assert.equal(deleted.status, 204);
    });
    assert.deepEqual(results, ['not the deleted one', 'not the deleted one']);
  });

  test('a session deleted by another replica is dropped from memory at the next read (404)', async () => {
    const finished = await finishedSession();
    await requestJson(`${server.url}/v1/sessions/${finished.id}`); // cached now
    const results = await resultsAfterRowsComeBack(finished, async () => {
      // Another replica's deletion: the rows go, this process is not told.
      const db = server.app.database.db;
      await deleteSessionOutputs(db, finished.id, 10_000);
      await deleteSessionRecord(db, finished.id);
      const read = await requestJson<{ code: string }>(`${server.url}/v1/sessions/${finished.id}`);
      assert.equal(read.status, 404);
      assert.equal(read.body.code, 'SESSION_NOT_FOUND');
    });
    assert.deepEqual(results, ['not the deleted one', 'not the deleted one']);
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
