// The hand-off (SQLite): a finish starts the tasks it readies on the slots just freed, in its own
// transaction, instead of leaving them for a claim round. The chain case (one write operation per
// step, the claim path's events) is checked in engine-step-commits.test.ts; here: the worker slot
// limit holds when a finish readies more tasks than there are free slots, and a started task gets
// its dependencies' outputs (from the finishing batch's memory or the store) as the store has them.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { AgentRuntime, DependencyOutput } from '../../src/agents/runtimes/runtime.ts';
import type { AgentSpec } from '../../src/domain/session-input.ts';
import { prepareRuns } from '../../src/engine/run-preparation.ts';
import { createDatabase } from '../../src/store/db.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';

describe('hand-off of readied tasks to the finishing process', { timeout: 60_000 }, () => {
  const harnesses: Harness[] = [];
  after(async () => {
    for (const h of harnesses) await h.close();
  });

  /**
   * Runs a pipeline session of `agents` with `llm` on `concurrency` worker slots to its end (it must
   * complete), with the poll interval and the leases out of the way (10 min each).
   */
  async function runPipeline(llm: AgentRuntime, concurrency: number, objective: string, agents: AgentSpec[]) {
    const h = await createHarness({ llm, concurrency, pollIntervalMs: 600_000, leaseSeconds: 600 });
    harnesses.push(h);
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective,
      strategy: 'pipeline',
      agents,
    });
    const detail = await h.waitForSession(session.id);
    assert.equal(detail.status, 'completed');
    return detail;
  }

  test('a finish that readies more tasks than free slots starts only as many; the rest are claimed later', async () => {
    let running = 0;
    let maxRunning = 0;
    const llm: AgentRuntime = {
      kind: 'fake-llm',
      async run(task) {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        running--;
        return { output: `done ${task.name}` };
      },
    };
    // root → 6 branches → join: the root's finish readies 6 tasks with 2 slots.
    const branches = Array.from({ length: 6 }, (_, i) => ({
      name: `b${i}`,
      role: 'engineer',
      task: `branch ${i}`,
      depends_on: ['root'],
    }));
    const detail = await runPipeline(llm, 2, 'fan-out', [
      { name: 'root', role: 'architect', task: 'root' },
      ...branches,
      { name: 'join', role: 'reviewer', task: 'join', depends_on: branches.map((branch) => branch.name) },
    ]);
    assert.equal(maxRunning, 2, 'never more runs than worker slots');
    for (const task of detail.tasks) assert.equal(task.status, 'succeeded');
  });

  test('a handed-off task sees the outputs of its dependencies in plan order, whether they finished in its batch or earlier', async () => {
    const seen = new Map<string, DependencyOutput[]>();
    const objectives = new Set<string>();
    const llm: AgentRuntime = {
      kind: 'fake-llm',
      async run(task) {
        seen.set(task.name, task.dependencies);
        objectives.add(task.objective);
        // `slow` finishes well after `fast`, so `both` is readied by a batch holding only `slow`.
        if (task.name === 'slow') await new Promise((resolve) => setTimeout(resolve, 50));
        return { output: `output of ${task.name} (${task.role})` };
      },
    };
    const detail = await runPipeline(llm, 4, 'dependency outputs', [
      { name: 'first', role: 'architect', task: 'first' },
      { name: 'second', role: 'engineer', task: 'second', depends_on: ['first'] },
      { name: 'slow', role: 'researcher', task: 'slow', depends_on: ['second'] },
      { name: 'fast', role: 'qa', task: 'fast', depends_on: ['second'] },
      { name: 'both', role: 'reviewer', task: 'both', depends_on: ['slow', 'fast'] },
    ]);
    const idOf = new Map(detail.tasks.map((task) => [task.name, task.id]));
    const expected = (names: string[], roles: string[]) =>
      names.map((name, i) => ({
        taskId: idOf.get(name),
        name,
        role: roles[i],
        output: `output of ${name} (${roles[i]})`,
      }));
    assert.deepEqual(seen.get('first'), []);
    // Chain step: its only dependency finished in the batch that started it.
    assert.deepEqual(seen.get('second'), expected(['first'], ['architect']));
    assert.deepEqual(seen.get('fast'), expected(['second'], ['engineer']));
    // Join: one dependency finished earlier (read from the store), one in the starting batch.
    assert.deepEqual(seen.get('both'), expected(['slow', 'fast'], ['researcher', 'qa']));
    // Claimed (first) or handed off (the others): every run has its session's objective.
    assert.deepEqual([...objectives], ['dependency outputs']);
  });

  test('a handed-off task gets an output holding NUL or a lone surrogate as the store keeps it, as a claimed one would', async () => {
    const seen = new Map<string, DependencyOutput[]>();
    const llm: AgentRuntime = {
      kind: 'fake-llm',
      async run(task) {
        seen.set(task.name, task.dependencies);
        // A runner's stdout may hold NUL; a model's text an unpaired surrogate, which a strict
        // provider refuses in a prompt (JSON.stringify writes it as a lone \udXXX escape).
        return { output: `${task.name}:\u0000:\ud800:end` };
      },
    };
    const detail = await runPipeline(llm, 2, 'unstorable output', [
      { name: 'first', role: 'architect', task: 'first' },
      { name: 'second', role: 'engineer', task: 'second', depends_on: ['first'] },
    ]);
    const stored = detail.tasks.find((task) => task.name === 'first')?.result;
    assert.equal(stored, 'first:\ufffd:\ufffd:end');
    assert.deepEqual(
      seen.get('second')?.map((dependency) => dependency.output),
      [stored],
    );
  });

  test("a hand-off takes its session's objective and trace from the runs that finished, unread", async () => {
    const h = await createHarness({ start: false, llm: { kind: 'idle', run: async () => ({ output: '' }) } });
    harnesses.push(h);
    // A second connection to the same file whose statements are recorded.
    const statements: string[] = [];
    const counted = createDatabase(
      { dataDir: h.dir, store: { synchronous: 'normal', busyTimeoutMs: 1000 } },
      {
        querySpanLogger: () => (event) => {
          if (event.level === 'query') statements.push(event.query.sql);
        },
      },
    );
    try {
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'the session objective',
        agents: [{ name: 'a', role: 'engineer', task: 'work' }],
      });
      const rows = await counted.db
        .selectFrom('tasks')
        .selectAll()
        .where('session_id', '=', session.id)
        .execute();
      const sessionReads = () => statements.filter((text) => text.includes('from "sessions"')).length;
      statements.length = 0;
      const read = await prepareRuns(counted.db, rows);
      assert.equal(sessionReads(), 1);
      assert.equal(read[0]?.task.objective, 'the session objective');
      statements.length = 0;
      const known = new Map([[session.id, { objective: read[0]!.task.objective, trace: read[0]!.trace }]]);
      assert.deepEqual(await prepareRuns(counted.db, rows, undefined, known), read);
      assert.equal(sessionReads(), 0);
    } finally {
      await counted.close();
    }
  });

  test('a cancel committed in the batch of the finish that starts the next step keeps that step from running', async () => {
    const started: string[] = [];
    let sessionId: Promise<string> | undefined;
    let h: Harness | undefined;
    const llm: AgentRuntime = {
      kind: 'fake-llm',
      async run(task, ctx) {
        started.push(task.name);
        if (task.name === 'first') {
          const id = await sessionId!;
          // The finish is queued as this run resolves, inside a timer callback; the cancel at the
          // following check phase, ahead of the write queue's own batch: both share one batch, the
          // cancel after the finish that starts `second` on the slot just freed.
          return new Promise((resolve) =>
            setTimeout(() => {
              setImmediate(() => void h!.engine.service.cancelSession(ACTOR, id));
              resolve({ output: 'first done' });
            }, 0),
          );
        }
        // Runs until stopped (the heartbeat would stop it only a third of a lease later).
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
        return { output: 'second done' };
      },
    };
    h = await createHarness({ llm, concurrency: 2, pollIntervalMs: 600_000, leaseSeconds: 600 });
    harnesses.push(h);
    const created = h.engine.service.createSession(ACTOR, {
      objective: 'cancelled between two steps',
      strategy: 'sequential',
      agents: [
        { name: 'first', role: 'architect', task: 'first' },
        { name: 'second', role: 'engineer', task: 'second' },
      ],
    });
    sessionId = created.then(({ session }) => session.id);
    const detail = await h.waitForSession(await sessionId);
    assert.equal(detail.status, 'cancelled');
    assert.deepEqual(
      detail.tasks.map((task) => [task.name, task.status]),
      [
        ['first', 'succeeded'],
        ['second', 'cancelled'],
      ],
    );
    assert.deepEqual(started, ['first'], 'the cancelled session ran no further step');
  });
});
