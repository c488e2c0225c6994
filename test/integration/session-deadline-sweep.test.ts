// The deadline sweep itself, with the clock given: only sessions past submission + deadlineSeconds
// end, cost-only or budget-free sessions are left alone, a second sweep changes nothing, and one
// session's unreadable budget does not keep the others from ending.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { expireSessionDeadlines } from '../../src/engine/session-deadlines.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';

describe('deadline sweep', { timeout: 30_000 }, () => {
  let h: Harness;
  before(async () => {
    // No worker slots run: the sessions stay `running` with ready tasks, as if one task ran long.
    h = await createHarness({ runners: { ok: { command: ['true'] } }, start: false });
  });
  after(async () => {
    await h.close();
  });

  async function submit(budget?: Record<string, number>) {
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: 'o',
      agents: [{ name: 'a', role: 'qa', task: 't', runner: 'ok' }],
      ...(budget ? { budget } : {}),
    });
    return session;
  }

  test('ends only sessions past their deadline, once', async () => {
    const timed = await submit({ deadlineSeconds: 10 });
    const costOnly = await submit({ maxCostUsd: 1 });
    const free = await submit();
    const sweep = (at: number) => h.handle.db.transaction().execute((trx) => expireSessionDeadlines(trx, at));

    assert.deepEqual(await sweep(timed.createdAt + 10_000), []);
    const expired = await sweep(timed.createdAt + 11_000);
    assert.deepEqual(expired, [{ id: timed.id, tenantId: ACTOR.tenantId }]);
    assert.deepEqual(await sweep(timed.createdAt + 60_000), []);

    const ended = await h.engine.service.getSession(ACTOR, timed.id);
    assert.equal(ended.status, 'failed');
    assert.equal(ended.error, 'BUDGET_EXCEEDED: deadline exceeded: 11 s of 10 s');
    assert.deepEqual(
      ended.tasks.map((task) => task.status),
      ['cancelled'],
    );
    const events = await h.allEvents(timed.id);
    assert.deepEqual(
      events.slice(-3).map((event) => event.type),
      ['task.status', 'session.status', 'session.finished'],
    );
    for (const other of [costOnly, free]) {
      assert.equal((await h.engine.service.getSession(ACTOR, other.id)).status, 'running');
    }
  });

  test('a stored budget that cannot be read does not stop the sweep of the other sessions', async () => {
    // Damaged by hand (an operator's edit of the JSON gone wrong, say): that one session is passed over.
    const damaged = await submit({ deadlineSeconds: 5 });
    const timed = await submit({ deadlineSeconds: 5 });
    await h.handle.db
      .updateTable('session_settings')
      .set({ budget: '{"deadlineSeconds": 5,' })
      .where('session_id', '=', damaged.id)
      .execute();
    const expired = await h.handle.db
      .transaction()
      .execute((trx) => expireSessionDeadlines(trx, timed.createdAt + 6_000));
    assert.deepEqual(expired, [{ id: timed.id, tenantId: ACTOR.tenantId }]);
    assert.equal((await h.engine.service.getSession(ACTOR, timed.id)).status, 'failed');
  });
});
