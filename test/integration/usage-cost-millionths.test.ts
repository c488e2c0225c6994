// A session's and a task's cost as the API shows them: charges are added up in the database, whose
// floating-point sums drift (0.1 + 0.2 is 0.30000000000000004); the session detail, its tasks and the
// session list show the cost to the millionth, as it is kept (addUsage) and as GET /v1/usage
// reports it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { chargeSessionUsage } from '../../src/engine/advance-sessions.ts';
import { addTaskUsage } from '../../src/engine/run-spend.ts';
import type { Database } from '../../src/store/schema.ts';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';

interface Usage {
  costUsd: number;
}
interface Session {
  id: string;
  usage: Usage;
  tasks: { usage: Usage }[];
}

describe('costs summed in the database, as the API shows them', { timeout: 60_000 }, () => {
  let server: TestServer;
  let sessionId: string;

  before(async () => {
    server = await startTestServer();
    const created = await requestJson<Session>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'cost probe', agents: [{ role: 'engineer', task: 'x', runner: 'ok' }] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    sessionId = created.body.id;
    await waitForSession(server.url, sessionId);
    const db = server.app.database.db as Kysely<Database>;
    const task = await db
      .selectFrom('tasks')
      .select('id')
      .where('session_id', '=', sessionId)
      .executeTakeFirstOrThrow();
    const taskId = task.id;
    const now = Date.now();
    // Two charges of one run, as a cancel and then the run itself add them.
    for (const costUsd of [0.1, 0.2]) {
      const usage = { inputTokens: 1, outputTokens: 1, cacheReadTokens: 0, costUsd };
      await db.transaction().execute(async (trx) => {
        await addTaskUsage(trx, taskId, usage, now);
        await chargeSessionUsage(trx, sessionId, usage, now);
      });
    }
    const stored = await db.selectFrom('sessions').select('cost_usd').where('id', '=', sessionId).execute();
    assert.notEqual(
      Number(stored[0]?.cost_usd),
      0.3,
      'the database sum drifts (else this test shows nothing)',
    );
  });
  after(() => server.close());

  test('the session and its tasks show the cost to the millionth', async () => {
    const detail = await requestJson<Session>(`${server.url}/v1/sessions/${sessionId}`);
    assert.equal(detail.status, 200, JSON.stringify(detail.body));
    assert.equal(detail.body.usage.costUsd, 0.3);
    assert.equal(detail.body.tasks[0]?.usage.costUsd, 0.3);
    const list = await requestJson<{ items: Session[] }>(`${server.url}/v1/sessions`);
    const listed = list.body.items.find((item) => item.id === sessionId);
    assert.equal(listed?.usage.costUsd, 0.3);
  });
});
