// SessionService contract on a real store: validation at submit, idempotency keys, pagination,
// status filter, event wake-ups, queue counts and observer calls.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LlmDb } from '../../src/agents/providers/llm-tables.ts';
import { createRoleService } from '../../src/agents/roles/role-service.ts';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import { AppError, type ErrorCode } from '../../src/errors/app-error.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';

const instant: AgentRuntime = { kind: 'fake', run: async () => ({ output: 'ok' }) };

function isCode(code: ErrorCode) {
  return (error: unknown) => {
    assert.ok(error instanceof AppError, String(error));
    assert.equal(error.code, code, error.message);
    return true;
  };
}

describe('session service', { timeout: 60_000 }, () => {
  let h: Harness;
  const observed: string[] = [];
  before(async () => {
    h = await createHarness({
      runners: { ok: { command: ['true'] } },
      start: false,
      observer: {
        sessionStarted: () => observed.push('started'),
        sessionFinished: (status) => observed.push(`finished:${status}`),
        taskClaimed: () => observed.push('claimed'),
        taskFinished: ({ status }) => observed.push(`task:${status}`),
      },
    });
  });
  after(() => h.close());

  test('rejects bad submissions with clear codes', async () => {
    const create = (input: unknown) => h.engine.service.createSession(ACTOR, input as never);
    await assert.rejects(create({ objective: '', agents: [] }), isCode('VALIDATION_FAILED'));
    await assert.rejects(
      create({ objective: 'x', agents: [{ role: 'engineer', task: 't', runner: 'ok' }], extra: 1 }),
      isCode('VALIDATION_FAILED'),
    );
    await assert.rejects(
      create({ objective: 'x', agents: [{ role: 'wizard', task: 't', runner: 'ok' }] }),
      isCode('INVALID_ROLE'),
    );
    await assert.rejects(
      create({ objective: 'x', agents: [{ role: 'engineer', task: 't', runner: 'nope' }] }),
      isCode('UNKNOWN_RUNNER'),
    );
    await assert.rejects(
      create({
        objective: 'x',
        agents: [
          { name: 'a', role: 'engineer', task: 't', runner: 'ok', depends_on: ['b'] },
          { name: 'b', role: 'engineer', task: 't', runner: 'ok', depends_on: ['a'] },
        ],
      }),
      isCode('INVALID_PLAN'),
    );
    await assert.rejects(create({ objective: 'plan it yourself' }), (error: unknown) => {
      isCode('INVALID_PLAN')(error);
      assert.match((error as Error).message, /no LLM provider is configured/);
      return true;
    });
    await assert.rejects(
      create({
        objective: 'x',
        strategy: 'adaptive',
        agents: [{ role: 'engineer', task: 't', runner: 'ok' }],
      }),
      (error: unknown) => {
        isCode('VALIDATION_FAILED')(error);
        assert.match((error as Error).message, /adaptive .* takes no agents/);
        return true;
      },
    );
    await assert.rejects(create({ objective: 'x', strategy: 'adaptive' }), (error: unknown) => {
      isCode('INVALID_PLAN')(error);
      assert.match((error as Error).message, /Strategy adaptive needs the LLM orchestrator/);
      return true;
    });
    await assert.rejects(
      create({ objective: 'x', agents: [{ role: 'engineer', task: 't' }] }),
      (error: unknown) => {
        isCode('VALIDATION_FAILED')(error);
        assert.match((error as Error).message, /gives no runner and no LLM provider is configured/);
        return true;
      },
    );
    const { items } = await h.engine.service.listSessions(ACTOR, { limit: 10 });
    assert.equal(items.length, 0, 'nothing was stored');
  });

  test('Idempotency-Key: same body → same session, different body → IDEMPOTENCY_KEY_REUSED', async () => {
    const body = {
      objective: 'idem',
      metadata: { a: 1, b: 2 },
      agents: [{ role: 'engineer', task: 't', runner: 'ok' }],
    };
    const first = await h.engine.service.createSession(ACTOR, body, 'key-1');
    assert.equal(first.created, true);
    const reordered = { agents: body.agents, metadata: { b: 2, a: 1 }, objective: 'idem' };
    const second = await h.engine.service.createSession(ACTOR, reordered, 'key-1');
    assert.equal(second.created, false);
    assert.equal(second.session.id, first.session.id);
    await assert.rejects(
      h.engine.service.createSession(ACTOR, { ...body, objective: 'other' }, 'key-1'),
      isCode('IDEMPOTENCY_KEY_REUSED'),
    );
    for (const badKey of ['', 'x'.repeat(256), 'has space', 'é']) {
      await assert.rejects(h.engine.service.createSession(ACTOR, body, badKey), isCode('VALIDATION_FAILED'));
    }
    const otherTenant = await h.engine.service.createSession(
      { tenantId: 'default', principalId: 'p2' },
      body,
      'key-2',
    );
    assert.notEqual(otherTenant.session.id, first.session.id);
    const concurrent = await Promise.all(
      [1, 2, 3].map(() => h.engine.service.createSession(ACTOR, { ...body, objective: 'race' }, 'key-3')),
    );
    assert.equal(new Set(concurrent.map((r) => r.session.id)).size, 1);
    assert.equal(concurrent.filter((r) => r.created).length, 1);
  });

  test('lists newest first with an opaque cursor, filters by status, rejects bad cursors', async () => {
    for (let i = 0; i < 5; i++) {
      await h.engine.service.createSession(ACTOR, {
        objective: `page ${i}`,
        agents: [{ role: 'engineer', task: 't', runner: 'ok' }],
      });
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await h.engine.service.listSessions(ACTOR, { limit: 2, ...(cursor ? { cursor } : {}) });
      assert.ok(page.items.length <= 2);
      seen.push(...page.items.map((item) => item.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    assert.equal(new Set(seen).size, seen.length, 'no duplicates across pages');
    const all = await h.engine.service.listSessions(ACTOR, { limit: 100 });
    assert.deepEqual(
      seen,
      all.items.map((item) => item.id),
    );
    const sorted = [...all.items].sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
    assert.deepEqual(
      all.items.map((i) => i.id),
      sorted.map((i) => i.id),
    );
    const running = await h.engine.service.listSessions(ACTOR, { limit: 100, status: 'running' });
    assert.equal(running.items.length, all.items.length);
    const completed = await h.engine.service.listSessions(ACTOR, { limit: 100, status: 'completed' });
    assert.equal(completed.items.length, 0);
    // A cursor that was changed: a character added (base64 decoding would drop it), or an id put in.
    const { nextCursor: given } = await h.engine.service.listSessions(ACTOR, { limit: 2 });
    assert.ok(given);
    const [createdAt] = JSON.parse(Buffer.from(given, 'base64url').toString('utf8')) as [number, string];
    const changed = [`${given}A`, Buffer.from(JSON.stringify([createdAt, 'zzz'])).toString('base64url')];
    for (const bad of ['garbage!', 'eyJ4IjoxfQ', Buffer.from('[1,2]').toString('base64url'), ...changed]) {
      await assert.rejects(
        h.engine.service.listSessions(ACTOR, { limit: 2, cursor: bad }),
        isCode('INVALID_CURSOR'),
      );
    }
    const other = await h.engine.service.listSessions(
      { tenantId: 'other', principalId: 'x' },
      { limit: 100 },
    );
    assert.equal(other.items.length, 0);
  });

  test('queue counts, wake-ups and observer calls as work runs', async () => {
    const before = await h.engine.getQueueCounts();
    assert.ok(before.tasks.ready > 0);
    assert.ok((before.sessions.running ?? 0) > 0);
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: 'watch',
      agents: [{ role: 'engineer', task: 't', runner: 'ok' }],
    });
    let wakes = 0;
    const stop = h.engine.service.watchEvents(session.id, () => wakes++);
    h.engine.start();
    const done = await h.waitForSession(session.id);
    stop();
    assert.equal(done.status, 'completed');
    assert.ok(wakes > 0, 'watchers are woken');
    const after = await h.engine.getQueueCounts();
    assert.equal(after.tasks.ready + after.tasks.leased + after.tasks.running, 0);
    assert.ok(observed.includes('started') && observed.includes('claimed'));
    assert.ok(observed.includes('task:succeeded') && observed.includes('finished:completed'));
    const page = await h.engine.service.listEvents(ACTOR, session.id, 2, 2);
    assert.deepEqual(
      page.map((e) => e.seq),
      [3, 4],
    );
  });
});

describe('LLM runtime seam', { timeout: 30_000 }, () => {
  test('tasks without a runner go to the registered LLM runtime', async () => {
    const h = await createHarness({ llm: instant });
    try {
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'x',
        agents: [{ role: 'researcher', task: 't' }],
      });
      const done = await h.waitForSession(session.id);
      assert.equal(done.status, 'completed');
      assert.equal(done.result, 'ok');
    } finally {
      await h.close();
    }
  });

  test('a continuation hook can add tasks instead of completing the session', async () => {
    let calls = 0;
    const h = await createHarness({
      llm: instant,
      continueSession: async (trx, session, now) => {
        calls++;
        if (calls > 1) return null;
        const base = await trx
          .selectFrom('tasks')
          .selectAll()
          .where('session_id', '=', session.id)
          .executeTakeFirstOrThrow();
        await trx
          .insertInto('tasks')
          .values({
            ...base,
            id: `${base.id}-next`,
            name: 'next',
            position: 1,
            status: 'ready',
            attempts: 0,
            result: null,
            ready_at: now,
            started_at: null,
            finished_at: null,
            agent_id: null,
          })
          .execute();
        await trx
          .insertInto('task_dependencies')
          .values({
            task_id: `${base.id}-next`,
            depends_on_task_id: base.id,
            session_id: session.id,
            tenant_id: session.tenantId,
          })
          .execute();
        return {
          readied: 1,
          events: [
            {
              type: 'task.status',
              data: { taskId: `${base.id}-next`, name: 'next', from: 'pending', to: 'ready', attempt: 0 },
            },
          ],
        };
      },
    });
    try {
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'x',
        agents: [{ name: 'first', role: 'researcher', task: 't' }],
      });
      const done = await h.waitForSession(session.id);
      assert.equal(done.status, 'completed');
      assert.equal(calls, 2);
      assert.deepEqual(
        done.tasks.map((task) => [task.name, task.status]),
        [
          ['first', 'succeeded'],
          ['next', 'succeeded'],
        ],
      );
      const events = await h.allEvents(session.id);
      assert.equal(events.filter((event) => event.type === 'session.finished').length, 1);
    } finally {
      await h.close();
    }
  });

  test("a tenant's custom roles are accepted when the engine can look them up", async () => {
    const h = await createHarness({
      llm: instant,
      findRole: async (tenantId, name) =>
        tenantId === 'default' && name === 'data_wrangler'
          ? { name, description: 'd', capabilities: [], instructions: 'i', builtIn: false }
          : undefined,
    });
    try {
      // Stored too: the insert checks the roles again in its transaction, in the roles table.
      await createRoleService(h.handle.db as unknown as LlmDb).createRole('default', 'p', {
        name: 'data_wrangler',
        description: 'Wrangles the data',
        instructions: 'You clean and reshape data sets.',
      });
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'x',
        agents: [{ role: 'data_wrangler', task: 't' }],
      });
      assert.equal((await h.waitForSession(session.id)).status, 'completed');
      await assert.rejects(
        h.engine.service.createSession(
          { tenantId: 'other', principalId: 'p' },
          { objective: 'x', agents: [{ role: 'data_wrangler', task: 't' }] },
        ),
        isCode('INVALID_ROLE'),
      );
    } finally {
      await h.close();
    }
  });
});
