// The budget check at task finishes reads a session's budget only while it may have one: a
// session's settings never change, so one found without a budget is not read again, while a
// session with a budget is read (and checked) at every finish. The runtime's budget guard shares
// that knowledge, and forgets the budgeted sessions it has not seen for ten minutes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { zeroUsage } from '../../src/engine/advance-sessions.ts';
import { createBudgetGuard, findBudgetOverruns } from '../../src/engine/session-budget.ts';
import { createDatabase, type DatabaseHandle } from '../../src/store/db.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';

describe('budget reads at task finishes', { timeout: 60_000 }, () => {
  let h: Harness;
  let counted: DatabaseHandle;
  const statements: string[] = [];
  before(async () => {
    // Not started: the sessions only need to exist.
    h = await createHarness({ start: false, llm: { kind: 'idle', run: async () => ({ output: '' }) } });
    // A second connection to the same file whose statements are recorded.
    counted = createDatabase(
      { dataDir: h.dir, store: { synchronous: 'full', busyTimeoutMs: 1000 } },
      {
        querySpanLogger: () => (event) => {
          if (event.level === 'query') statements.push(event.query.sql);
        },
      },
    );
  });
  after(async () => {
    await counted.close();
    await h.close();
  });

  const agents = [{ name: 'a', role: 'engineer', task: 'work' }];
  const touchedOf = (ids: string[], inputTokens = 0) =>
    new Map(
      ids.map((id) => [id, { tenantId: ACTOR.tenantId, events: [], usage: { ...zeroUsage(), inputTokens } }]),
    );
  const budgetReads = async (ids: string[], inputTokens = 0) => {
    statements.length = 0;
    const overruns = await findBudgetOverruns(counted.db, touchedOf(ids, inputTokens), Date.now());
    return { reads: statements.filter((text) => text.includes('session_settings')).length, overruns };
  };

  test('a session without a budget is read once; one with a budget at every finish', async () => {
    const plain = (await h.engine.service.createSession(ACTOR, { objective: 'plain', agents })).session.id;
    const budgeted = (
      await h.engine.service.createSession(ACTOR, { objective: 'capped', agents, budget: { maxTokens: 100 } })
    ).session.id;

    assert.deepEqual(await budgetReads([plain, budgeted]), { reads: 1, overruns: new Map() });
    assert.deepEqual(await budgetReads([plain]), { reads: 0, overruns: new Map() });
    assert.deepEqual(await budgetReads([budgeted]), { reads: 1, overruns: new Map() });
    const over = await budgetReads([plain, budgeted], 500);
    assert.equal(over.reads, 1);
    assert.deepEqual([...over.overruns.keys()], [budgeted]);
    assert.match(over.overruns.get(budgeted)?.reason ?? '', /token/i);
  });

  test('the budget guard reads an unbudgeted session once, checks streamed usage, and forgets idle sessions', async () => {
    let clock = 1_000_000;
    const guard = createBudgetGuard(counted.db, { now: () => clock });
    const budgeted = (
      await h.engine.service.createSession(ACTOR, {
        objective: 'guarded',
        agents,
        budget: { maxTokens: 100 },
      })
    ).session.id;
    const plain = (await h.engine.service.createSession(ACTOR, { objective: 'free', agents })).session.id;
    const reads = async (run: () => Promise<void>) => {
      statements.length = 0;
      await run();
      return statements.filter((text) => text.includes('session_settings')).length;
    };
    assert.equal(
      await reads(() => guard.prepare({ tenantId: ACTOR.tenantId, sessionId: plain, taskId: 'starting' })),
      1,
    );
    assert.equal(
      await reads(() => guard.prepare({ tenantId: ACTOR.tenantId, sessionId: plain, taskId: 'starting' })),
      0,
      'no budget: known for good',
    );
    assert.equal(
      guard.check(
        { tenantId: ACTOR.tenantId, sessionId: plain, taskId: 't1' },
        { ...zeroUsage(), inputTokens: 10_000 },
      ),
      null,
    );
    // The finishes of that session know it too.
    assert.equal((await budgetReads([plain])).reads, 0);
    assert.equal(
      await reads(() => guard.prepare({ tenantId: ACTOR.tenantId, sessionId: budgeted, taskId: 'starting' })),
      1,
    );
    const task = { tenantId: ACTOR.tenantId, sessionId: budgeted, taskId: 't1' };
    assert.equal(guard.check(task, { ...zeroUsage(), inputTokens: 50 }), null);
    assert.match(String(guard.check(task, { ...zeroUsage(), inputTokens: 500 }) ?? ''), /token/i);
    guard.release(task);
    // Eleven minutes later the idle entry is swept (at the next agent start, of any session).
    clock += 11 * 60_000;
    await guard.prepare({ tenantId: ACTOR.tenantId, sessionId: 'another-session', taskId: 'starting' });
    assert.equal(guard.check(task, { ...zeroUsage(), inputTokens: 500 }), null);
  });

  test('a run silent for longer than the sweep (a model thinking) is still held to its budget when it streams', async () => {
    let clock = 5_000_000;
    const guard = createBudgetGuard(counted.db, { now: () => clock });
    const sessionId = (
      await h.engine.service.createSession(ACTOR, {
        objective: 'thinking',
        agents,
        budget: { maxTokens: 100 },
      })
    ).session.id;
    const task = { tenantId: ACTOR.tenantId, sessionId, taskId: 'thinker' };
    await guard.prepare(task);
    // Eleven minutes without a flush; another agent's start sweeps the guard's idle entries.
    clock += 11 * 60_000;
    await guard.prepare({ tenantId: ACTOR.tenantId, sessionId: 'another-session', taskId: 'starting' });
    // The answer then streams far over the budget: stopped at a flush, as soon as the budget is read again.
    let overrun = guard.check(task, { ...zeroUsage(), outputTokens: 500 });
    for (let flush = 0; overrun === null && flush < 200; flush++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      overrun = guard.check(task, { ...zeroUsage(), outputTokens: 500 });
    }
    assert.match(String(overrun ?? ''), /token budget exceeded: 500 of 100/);
    guard.release(task);
  });

  test('the guard adds up what the running tasks of a session have streamed, until each run ends', async () => {
    const guard = createBudgetGuard(counted.db);
    const budgeted = async () =>
      (
        await h.engine.service.createSession(ACTOR, {
          objective: 'parallel streams',
          agents,
          budget: { maxTokens: 100 },
        })
      ).session.id;
    const sessionId = await budgeted();
    const other = await budgeted();
    await guard.prepare({ tenantId: ACTOR.tenantId, sessionId, taskId: 'starting' });
    await guard.prepare({ tenantId: ACTOR.tenantId, sessionId: other, taskId: 'starting' });
    const first = { tenantId: ACTOR.tenantId, sessionId, taskId: 'first' };
    const second = { tenantId: ACTOR.tenantId, sessionId, taskId: 'second' };
    const tokens = (outputTokens: number) => ({ ...zeroUsage(), outputTokens });
    // Each under the budget, together over it.
    assert.equal(guard.check(first, tokens(60)), null);
    assert.match(String(guard.check(second, tokens(60)) ?? ''), /token budget exceeded: 120 of 100/);
    // A later flush replaces the task's figure, it does not add to it.
    assert.match(String(guard.check(first, tokens(70)) ?? ''), /130 of 100/);
    guard.release(first);
    assert.equal(guard.check(second, tokens(60)), null);
    // Another budgeted session's streams do not count towards this one, nor this one's towards it.
    assert.equal(
      guard.check({ tenantId: ACTOR.tenantId, sessionId: other, taskId: 'first' }, tokens(60)),
      null,
    );
    assert.equal(guard.check(second, tokens(60)), null);
    guard.release(second);
  });
});
