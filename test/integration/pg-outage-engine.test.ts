// The engine while PostgreSQL is stopped and started again: a task that ends during the outage keeps
// its result (its finish is tried again until the database answers) instead of running a second
// time, one whose outage outlasts its lease still charges all it spent, once, and
// the worker loop backs off its claims, and claims and lease heartbeats log the outage once when it
// starts and once when it ends.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { type KyselyPlugin, RawNode, sql } from 'kysely';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import { findFinishedRuns, finishTask, markTasksRunning } from '../../src/engine/task-ops.ts';
import { claimOf, type RunOutcome } from '../../src/engine/task-outcome.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { claimReadyTasks } from '../../src/store/task-store.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';
import { type RestartablePostgres, startRestartablePostgres } from '../fixtures/restartable-postgres.ts';
import { waitFor } from '../fixtures/wait-for.ts';

interface LogLine {
  'log.level': string;
  message: string;
  failedClaims?: number;
  failedHeartbeats?: number;
}

/** A JSON logger whose lines the test reads back. */
function capturedLogger() {
  const lines: LogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line));
      callback();
    },
  });
  return { lines, logger: createLogger({ level: 'info', format: 'json', destination }) };
}

const instant: AgentRuntime = {
  kind: 'fake',
  run: async (task) => ({ output: `done ${task.name}`, usage: { inputTokens: 1 } }),
};

describe('the engine during a PostgreSQL outage', { timeout: 120_000 }, () => {
  let database: RestartablePostgres;
  before(async () => {
    database = await startRestartablePostgres();
  });
  after(async () => {
    await database?.close();
  });

  test('claims back off while the database is down: one error line when it starts, one info line when it ends', async () => {
    const { lines, logger } = capturedLogger();
    const h: Harness = await createHarness({
      storeUrl: database.url,
      llm: instant,
      pollIntervalMs: 20,
      logger,
    });
    try {
      await database.stop('fast');
      // Without the back-off this is some 75 polls, each logging an error.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const failures = () => lines.filter((line) => line.message.startsWith('claiming tasks failed'));
      assert.equal(
        failures().length,
        1,
        failures()
          .map((line) => line.message)
          .join('\n'),
      );
      assert.equal(failures()[0]!['log.level'], 'error');
      assert.match(failures()[0]!.message, /the database cannot be reached/);

      await database.start();
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'after the outage',
        agents: [{ name: 'only', role: 'engineer', task: 't' }],
      });
      assert.equal((await h.waitForSession(session.id, 30_000)).status, 'completed');
      assert.equal(
        failures().length,
        1,
        failures()
          .map((line) => line.message)
          .join('\n'),
      );
      const recovered = lines.filter((line) => line.message.startsWith('claiming tasks works again'));
      assert.equal(recovered.length, 1, JSON.stringify(lines));
      assert.equal(recovered[0]!['log.level'], 'info');
      assert.ok(recovered[0]!.failedClaims! > 1, JSON.stringify(recovered[0]));
    } finally {
      await h.close();
    }
  });

  test('heartbeats while the database is down: one error line when it starts, one info line when it ends', async () => {
    const { lines, logger } = capturedLogger();
    let release: (() => void) | undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let running = false;
    const gated: AgentRuntime = {
      kind: 'fake',
      async run(task) {
        running = true;
        await released;
        return { output: `done ${task.name}`, usage: { inputTokens: 1 } };
      },
    };
    // A heartbeat every second while the task runs.
    const h = await createHarness({ storeUrl: database.url, llm: gated, leaseSeconds: 3, logger });
    try {
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'heartbeats in an outage',
        agents: [{ name: 'only', role: 'engineer', task: 't' }],
      });
      await waitFor(() => running, 30_000, 'the task runs');
      await database.stop('fast');
      // Without the change every heartbeat of these (some three) logs a warning.
      await new Promise((resolve) => setTimeout(resolve, 3500));
      const failures = () => lines.filter((line) => line.message.startsWith('heartbeat failed'));
      const shown = () =>
        failures()
          .map((line) => `${line['log.level']} ${line.message}`)
          .join('\n');
      assert.equal(failures().length, 1, shown());
      assert.equal(failures()[0]!['log.level'], 'error');
      assert.match(failures()[0]!.message, /the database cannot be reached/);

      await database.start();
      const recovered = () => lines.filter((line) => line.message.startsWith('heartbeats work again'));
      await waitFor(() => recovered().length > 0, 30_000, 'a heartbeat works again');
      assert.equal(failures().length, 1, shown());
      assert.equal(recovered().length, 1, JSON.stringify(lines));
      assert.equal(recovered()[0]!['log.level'], 'info');
      assert.ok(recovered()[0]!.failedHeartbeats! > 1, JSON.stringify(recovered()[0]));
      release!();
      assert.equal((await h.waitForSession(session.id, 30_000)).status, 'completed');
    } finally {
      release!();
      await h.close();
    }
  });

  test('a task that ends while the database is down keeps its result: one attempt, one run', async () => {
    let runs = 0;
    let answer: (() => void) | undefined;
    const gated: AgentRuntime = {
      kind: 'fake',
      async run(task) {
        // The first run answers while the database is down; a second one (the bug) at once.
        if (++runs === 1) {
          await new Promise<void>((resolve) => {
            answer = resolve;
          });
        }
        return { output: `done ${task.name} attempt ${task.attempt}`, usage: { inputTokens: 7 } };
      },
    };
    // Without the retry the finish is lost and the task runs again once this lease expires.
    const h = await createHarness({
      storeUrl: database.url,
      llm: gated,
      leaseSeconds: 10,
      pollIntervalMs: 50,
    });
    try {
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'finish in an outage',
        agents: [{ name: 'only', role: 'engineer', task: 't' }],
      });
      await waitFor(() => answer !== undefined, 30_000, 'the task runs');
      await database.stop('fast');
      answer!();
      // Its finish fails at least once before the database is back.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await database.start();
      const done = await h.waitForSession(session.id, 60_000);
      assert.equal(done.status, 'completed');
      assert.equal(runs, 1);
      assert.equal(done.tasks[0]!.attempts, 1);
      assert.equal(done.tasks[0]!.result, 'done only attempt 1');
      assert.equal(done.usage.inputTokens, 7, 'charged once');
      const results = (await h.allEvents(session.id)).filter((event) => event.type === 'task.result');
      assert.equal(results.length, 1);
    } finally {
      await h.close();
    }
  });

  test("a finish held up by an outage past the run's lease still charges everything the run spent, once", async () => {
    const runs: number[] = [];
    let answer: (() => void) | undefined;
    let spendMore: (() => void) | undefined;
    const spender: AgentRuntime = {
      kind: 'fake',
      async run(task, ctx) {
        runs.push(task.attempt);
        if (task.attempt > 1) return { output: `done ${task.name} attempt ${task.attempt}`, usage: {} };
        // Two model calls: the first one's spend is recorded on the task, the second one's not (the
        // database is down by then); the run answers with both.
        ctx.reportSpend?.({ inputTokens: 300, outputTokens: 200, cacheReadTokens: 0, costUsd: 0 });
        await new Promise<void>((resolve) => {
          spendMore = resolve;
        });
        ctx.reportSpend?.({ inputTokens: 600, outputTokens: 400, cacheReadTokens: 0, costUsd: 0 });
        await new Promise<void>((resolve) => {
          answer = resolve;
        });
        return { output: `done ${task.name} attempt 1`, usage: { inputTokens: 600, outputTokens: 400 } };
      },
    };
    const finished: string[] = [];
    const h = await createHarness({
      storeUrl: database.url,
      llm: spender,
      leaseSeconds: 2,
      pollIntervalMs: 50,
      observer: { taskFinished: ({ status }) => finished.push(status) },
    });
    try {
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'finish after the lease in an outage',
        agents: [{ name: 'only', role: 'engineer', task: 't' }],
      });
      await waitFor(
        async () =>
          (
            await h.handle.db
              .selectFrom('tasks')
              .select('unsettled_usage')
              .where('session_id', '=', session.id)
              .executeTakeFirst()
          )?.unsettled_usage?.includes('300'),
        30_000,
        'the first spend recorded',
      );
      await database.stop('fast');
      spendMore!();
      await waitFor(() => answer !== undefined, 30_000, 'the second model call');
      answer!();
      // The outage outlasts the run's lease: its finish is still failing when the lease runs out.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      await database.start();
      const done = await h.waitForSession(session.id, 60_000);
      assert.equal(done.status, 'completed');
      // Every run has reported its end (a finish rejected for a lost lease reports it too).
      await waitFor(() => finished.length === runs.length, 30_000, 'every run reported finished');
      const detail = await h.engine.service.getSession(ACTOR, session.id);
      assert.deepEqual(
        [detail.usage.inputTokens, detail.usage.outputTokens],
        [600, 400],
        'both model calls charged, once',
      );
      assert.deepEqual([detail.tasks[0]!.usage.inputTokens, detail.tasks[0]!.usage.outputTokens], [600, 400]);
    } finally {
      await h.close();
    }
  });

  test('a finish tried again after a commit whose answer was lost finds it stored and applies nothing twice', async () => {
    const h = await createHarness({ storeUrl: database.url, llm: instant, start: false });
    try {
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'lost commit answer',
        agents: [{ name: 'only', role: 'engineer', task: 't' }],
      });
      const [row] = await h.engine.queue.run((trx) =>
        claimReadyTasks(trx, 'postgres', {
          owner: 'w1',
          limit: 1,
          leaseMs: 60_000,
          now: Date.now(),
          start: true,
        }),
      );
      const claim = claimOf(
        {
          taskId: row!.id,
          sessionId: session.id,
          tenantId: row!.tenant_id,
          name: row!.name,
          attempt: Number(row!.attempts),
        },
        'w1',
      );
      const usage = { inputTokens: 5, outputTokens: 0, cacheReadTokens: 0, costUsd: 0 };
      const outcome: RunOutcome = { ok: true, output: 'the answer', usage };
      const other: RunOutcome = { ok: true, output: 'another answer', usage };
      const before = await h.engine.queue.run((trx) => findFinishedRuns(trx, [{ claim, outcome }]));
      assert.equal(before.size, 0, 'not finished yet');
      await h.engine.queue.run((trx) => markTasksRunning(trx, [claim], Date.now()));
      // The first try committed; its answer was lost.
      const first = await h.engine.queue.run((trx) => finishTask(trx, claim, outcome, Date.now()));
      assert.equal(first.applied, true);
      const items = [
        { claim, outcome },
        { claim, outcome: other },
        { claim: { ...claim, attempt: claim.attempt + 1 }, outcome },
      ];
      const found = await h.engine.queue.run((trx) => findFinishedRuns(trx, items));
      assert.deepEqual(
        items.map((item) => found.has(item)),
        [true, false, false],
      );
    } finally {
      await h.close();
    }
  });

  test('a finish whose COMMIT answer is lost is tried again, finds itself stored and charges nothing twice', async () => {
    // The COMMIT reaches PostgreSQL and commits, but its answer is replaced by a lost connection.
    let armed = false;
    let lostAnswers = 0;
    const commits = new WeakSet<object>();
    const loseCommitAnswer: KyselyPlugin = {
      transformQuery({ node, queryId }) {
        if (armed && RawNode.is(node) && node.sqlFragments.join('').trim() === 'commit') {
          armed = false;
          commits.add(queryId);
        }
        return node;
      },
      async transformResult({ result, queryId }) {
        if (!commits.has(queryId)) return result;
        lostAnswers++;
        throw new AppError('STORE_UNAVAILABLE', 'The database cannot be reached (ECONNRESET)');
      },
    };
    let answer: (() => void) | undefined;
    const gated: AgentRuntime = {
      kind: 'fake',
      async run(task) {
        await new Promise<void>((resolve) => {
          answer = resolve;
        });
        return { output: `done ${task.name} attempt ${task.attempt}`, usage: { inputTokens: 7 } };
      },
    };
    const finished: string[] = [];
    // No claim poll and no heartbeat between the answer and the finish: its COMMIT is the next one.
    const h = await createHarness({
      storeUrl: database.url,
      llm: gated,
      pollIntervalMs: 60_000,
      leaseSeconds: 60,
      engineDb: (db) => db.withPlugin(loseCommitAnswer),
      observer: { taskFinished: ({ status }) => finished.push(status) },
    });
    try {
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'lost commit answer',
        agents: [{ name: 'only', role: 'engineer', task: 't' }],
      });
      await waitFor(() => answer !== undefined, 30_000, 'the task runs');
      armed = true;
      answer!();
      // The run is reported finished once its finish was tried again (the task shows completed before).
      await waitFor(() => finished.length > 0, 30_000, 'the run reported finished');
      assert.equal(lostAnswers, 1, 'the finish lost the answer to its COMMIT');
      assert.deepEqual(finished, ['succeeded'], 'applied once, not rejected as a lost lease');
      const done = await h.waitForSession(session.id, 30_000);
      assert.equal(done.status, 'completed');
      assert.equal(done.tasks[0]!.attempts, 1);
      assert.equal(done.tasks[0]!.result, 'done only attempt 1');
      assert.equal(done.tasks[0]!.usage.inputTokens, 7, 'the task is charged once');
      assert.equal(done.usage.inputTokens, 7, 'the session is charged once');
      const results = (await h.allEvents(session.id)).filter((event) => event.type === 'task.result');
      assert.equal(results.length, 1);
    } finally {
      await h.close();
    }
  });

  test('a rejected finish whose COMMIT answer is lost is tried again and charges the run once', async () => {
    // The COMMIT reaches PostgreSQL and commits, but its answer is replaced by a lost connection.
    let armed = false;
    let lostAnswers = 0;
    const commits = new WeakSet<object>();
    const loseCommitAnswer: KyselyPlugin = {
      transformQuery({ node, queryId }) {
        if (armed && RawNode.is(node) && node.sqlFragments.join('').trim() === 'commit') {
          armed = false;
          commits.add(queryId);
        }
        return node;
      },
      async transformResult({ result, queryId }) {
        if (!commits.has(queryId)) return result;
        lostAnswers++;
        throw new AppError('STORE_UNAVAILABLE', 'The database cannot be reached (ECONNRESET)');
      },
    };
    let answer: (() => void) | undefined;
    const gated: AgentRuntime = {
      kind: 'fake',
      async run(task) {
        await new Promise<void>((resolve) => {
          answer = resolve;
        });
        return {
          output: `done ${task.name} attempt ${task.attempt}`,
          usage: { inputTokens: 7, outputTokens: 3 },
        };
      },
    };
    const finished: string[] = [];
    // No claim poll, heartbeat or reaper pass between the answer and the finish: its COMMIT is the next one.
    const h = await createHarness({
      storeUrl: database.url,
      llm: gated,
      pollIntervalMs: 60_000,
      leaseSeconds: 60,
      engineDb: (db) => db.withPlugin(loseCommitAnswer),
      observer: { taskFinished: ({ status }) => finished.push(status) },
    });
    try {
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'rejected finish, lost commit answer',
        agents: [{ name: 'only', role: 'engineer', task: 't' }],
      });
      await waitFor(() => answer !== undefined, 30_000, 'the task runs');
      // Another replica holds the task now (as after a lease lost in a stall): this run's finish is
      // rejected, and charges what the run spent as an unapplied run's.
      await h.handle.db
        .updateTable('tasks')
        .set({ attempts: sql`attempts + 1`, lease_owner: 'another-replica' })
        .where('session_id', '=', session.id)
        .execute();
      armed = true;
      answer!();
      await waitFor(() => finished.length > 0, 30_000, 'the run reported finished');
      assert.equal(lostAnswers, 1, 'the finish lost the answer to its COMMIT');
      assert.deepEqual(finished, ['cancelled'], 'rejected: the claim no longer held');
      const detail = await h.engine.service.getSession(ACTOR, session.id);
      assert.deepEqual(
        [detail.tasks[0]!.usage.inputTokens, detail.tasks[0]!.usage.outputTokens],
        [7, 3],
        'the task is charged once',
      );
      assert.deepEqual(
        [detail.usage.inputTokens, detail.usage.outputTokens],
        [7, 3],
        'the session is charged once',
      );
    } finally {
      await h.close();
    }
  });
});
