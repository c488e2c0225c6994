// The spend a running attempt records on its task (engine/run-spend.ts) is charged exactly once:
// by the run itself when it is stopped (cancel, shutdown), never again by the lease reaper that
// later takes the task over; and the record is gone once the task has been settled.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import type { Usage } from '../../src/domain/types.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { ACTOR, createHarness, type Harness, makeTempDir } from '../fixtures/engine-harness.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { waitFor } from '../fixtures/wait-for.ts';

const RECORDED: Usage = { inputTokens: 100, outputTokens: 50, cacheReadTokens: 0, costUsd: 0.01 };
const SPENT: Usage = { inputTokens: 100, outputTokens: 80, cacheReadTokens: 0, costUsd: 0.02 };
const RERUN: Usage = { inputTokens: 10, outputTokens: 5, cacheReadTokens: 0, costUsd: 0.001 };

/** An agent that records RECORDED, streams a line, runs until stopped, then reports SPENT. */
const stoppableAgent: AgentRuntime = {
  kind: 'llm',
  async run(_task, ctx) {
    ctx.reportSpend?.(RECORDED);
    ctx.emitOutput('text', 'working\n');
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
    ctx.reportFailedRunUsage?.(SPENT);
    throw new AppError('RUNNER_FAILED', 'stopped');
  },
};

async function startSession(h: Harness): Promise<string> {
  const { session } = await h.engine.service.createSession(ACTOR, {
    objective: 'spend',
    agents: [{ name: 'a', role: 'engineer', task: 'work' }],
  });
  // The record is on the task once the first output flush committed.
  await waitFor(async () => {
    const row = await h.handle.db
      .selectFrom('tasks')
      .select('unsettled_usage')
      .where('session_id', '=', session.id)
      .executeTakeFirst();
    return row?.unsettled_usage ? true : undefined;
  });
  return session.id;
}

async function storedUsage(h: Harness, sessionId: string) {
  const task = await h.handle.db
    .selectFrom('tasks')
    .select(['input_tokens', 'output_tokens', 'cost_usd', 'unsettled_usage'])
    .where('session_id', '=', sessionId)
    .executeTakeFirstOrThrow();
  const session = await h.engine.service.getSession(ACTOR, sessionId);
  return { task, session: session.usage };
}

function close(a: number, b: number): boolean {
  return Math.abs(a - b) < 1e-9;
}

test('a cancelled run is charged all it spent, once; its record is settled with it', async () => {
  const h = await createHarness({ llm: stoppableAgent, concurrency: 1 });
  try {
    const id = await startSession(h);
    await h.engine.service.cancelSession(ACTOR, id);
    // The cancel charges the record; the run, once stopped, what it spent beyond it.
    const { task, session } = await waitFor(async () => {
      const usage = await storedUsage(h, id);
      return Number(usage.task.output_tokens) >= SPENT.outputTokens ? usage : undefined;
    });
    assert.equal(task.input_tokens, SPENT.inputTokens);
    assert.equal(task.output_tokens, SPENT.outputTokens);
    assert.ok(close(task.cost_usd, SPENT.costUsd));
    assert.equal(task.unsettled_usage, null);
    assert.equal(session.outputTokens, SPENT.outputTokens);
  } finally {
    await h.close();
  }
});

for (const store of ['sqlite', 'postgres'] as const) {
  test(`${store}: a run stopped at shutdown is charged once; the reaper that takes its lease over adds nothing`, async (t) => {
    const dir = makeTempDir();
    let storeUrl: string | undefined;
    if (store === 'postgres') {
      const database = await createTestDatabase();
      t.after(() => database.drop());
      storeUrl = database.url;
    }
    const on = { dir, leaseSeconds: 1, ...(storeUrl ? { storeUrl } : {}) };
    const first = await createHarness({ ...on, llm: stoppableAgent, concurrency: 1, workerId: 'first' });
    const id = await startSession(first);
    // Stops the run at once (its spend charged by the run), leaving its lease to expire.
    await first.close({ crash: true, keepDir: true });

    const rerun: AgentRuntime = { kind: 'llm', run: async () => ({ output: 'again', usage: RERUN }) };
    const second = await createHarness({ ...on, llm: rerun, workerId: 'second' });
    try {
      const done = await second.waitForSession(id);
      assert.equal(done.status, 'completed', done.error ?? '');
      const { task, session } = await storedUsage(second, id);
      assert.equal(Number(task.input_tokens), SPENT.inputTokens + RERUN.inputTokens);
      assert.equal(
        Number(task.output_tokens),
        SPENT.outputTokens + RERUN.outputTokens,
        'the record is not charged again',
      );
      assert.ok(close(Number(task.cost_usd), SPENT.costUsd + RERUN.costUsd));
      assert.equal(task.unsettled_usage, null);
      assert.equal(session.outputTokens, SPENT.outputTokens + RERUN.outputTokens);
    } finally {
      await second.close();
    }
  });
}

test('a run that succeeds is charged the usage it reports, even below an estimate it recorded', async () => {
  const estimate: Usage = { inputTokens: 300, outputTokens: 200, cacheReadTokens: 0, costUsd: 0.05 };
  const counted: Usage = { inputTokens: 250, outputTokens: 180, cacheReadTokens: 0, costUsd: 0.04 };
  const agent: AgentRuntime = {
    kind: 'llm',
    async run(_task, ctx) {
      ctx.reportSpend?.(estimate);
      ctx.emitOutput('text', 'streaming\n');
      // Past an output flush tick: the estimate is on record.
      await new Promise((resolve) => setTimeout(resolve, 300));
      return { output: 'done', usage: counted };
    },
  };
  const h = await createHarness({ llm: agent, concurrency: 1 });
  try {
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: 'estimate',
      agents: [{ name: 'a', role: 'engineer', task: 'work' }],
    });
    const done = await h.waitForSession(session.id);
    assert.equal(done.status, 'completed', done.error ?? '');
    const { task } = await storedUsage(h, session.id);
    assert.equal(task.input_tokens, counted.inputTokens);
    assert.equal(task.output_tokens, counted.outputTokens);
    assert.ok(close(task.cost_usd, counted.costUsd));
    assert.equal(task.unsettled_usage, null);
  } finally {
    await h.close();
  }
});
