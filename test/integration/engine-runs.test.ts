// The engine end to end on a real SQLite file with real child processes: ordering, failure
// propagation, cancellation (the child is killed) and graceful release at shutdown.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';
import { waitFor } from '../fixtures/wait-for.ts';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('engine with the command runtime', { timeout: 60_000 }, () => {
  let h: Harness;
  before(async () => {
    h = await createHarness({
      runners: {
        ok: { command: ['true'] },
        fail: { command: ['sh', '-c', 'echo "bad input" >&2; exit 3'] },
        hello: { command: ['sh', '-c', 'echo "start $MAOS_TASK_NAME"; echo "task=$MAOS_TASK"'] },
        sleep: { command: ['sh', '-c', 'echo "pid $$"; exec sleep 30'] },
        slow: { command: ['sleep', '30'], timeoutSeconds: 1 },
        lines: { command: ['sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do echo "line $i"; done; echo "err" >&2'] },
      },
      concurrency: 4,
    });
  });
  after(() => h.close());

  test('a 3-task pipeline runs in dependency order and streams output', async () => {
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: 'build it',
      strategy: 'pipeline',
      agents: [
        { name: 'c', role: 'reviewer', task: 'review', runner: 'hello', depends_on: ['b'] },
        { name: 'a', role: 'engineer', task: 'write', runner: 'hello' },
        { name: 'b', role: 'tester', task: 'test', runner: 'hello', depends_on: ['a'] },
      ],
    });
    const done = await h.waitForSession(session.id);
    assert.equal(done.status, 'completed', done.error ?? '');
    assert.equal(done.result, 'start c\ntask=review');
    const byName = new Map(done.tasks.map((task) => [task.name, task]));
    assert.ok(byName.get('b')!.startedAt! >= byName.get('a')!.finishedAt!);
    assert.ok(byName.get('c')!.startedAt! >= byName.get('b')!.finishedAt!);
    const events = await h.allEvents(session.id);
    assert.deepEqual(
      events.map((event) => event.seq),
      events.map((_, index) => index + 1),
    );
    const runningOrder = events
      .filter((event) => event.type === 'task.status' && event.data.to === 'running')
      .map((event) => event.data.name);
    assert.deepEqual(runningOrder, ['a', 'b', 'c']);
    const lines = events.filter((event) => event.type === 'task.output').map((event) => event.data.line);
    assert.ok(lines.includes('start a') && lines.includes('task=write'), lines.join('|'));
    assert.equal(events.at(-1)!.type, 'session.finished');
  });

  test('a failing task cancels its dependants and fails the session with the reason', async () => {
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: 'fail',
      agents: [
        { name: 'broken', role: 'engineer', task: 'x', runner: 'fail' },
        { name: 'after', role: 'tester', task: 'y', runner: 'ok', depends_on: ['broken'] },
        { name: 'last', role: 'reviewer', task: 'z', runner: 'ok', depends_on: ['after'] },
        { name: 'side', role: 'engineer', task: 'w', runner: 'ok' },
      ],
    });
    assert.equal(session.strategy, 'pipeline');
    const done = await h.waitForSession(session.id);
    assert.equal(done.status, 'failed');
    assert.match(done.error!, /task broken failed: Runner fail exited with code 3: bad input/);
    const status = Object.fromEntries(done.tasks.map((task) => [task.name, task.status]));
    assert.deepEqual(status, { broken: 'failed', after: 'cancelled', last: 'cancelled', side: 'succeeded' });
    // tasks.maxAttempts (3 here) counts runs whose lease expired: a run that failed is not run again.
    assert.equal(done.tasks.find((task) => task.name === 'broken')!.attempts, 1);
    assert.match(
      done.tasks.find((task) => task.name === 'last')!.error!,
      /dependency broken did not succeed/,
    );
  });

  test('every output line of concurrent tasks is stored, before the task result', async () => {
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: 'chatty',
      agents: Array.from({ length: 8 }, () => ({ role: 'engineer', task: 'talk', runner: 'lines' })),
    });
    const done = await h.waitForSession(session.id);
    assert.equal(done.status, 'completed');
    const events = await h.allEvents(session.id);
    for (const task of done.tasks) {
      const mine = events.filter((event) => event.data.taskId === task.id);
      const lines = mine.filter((event) => event.type === 'task.output' && event.data.stream === 'stdout');
      assert.deepEqual(
        lines.map((event) => event.data.line),
        Array.from({ length: 8 }, (_, i) => `line ${i + 1}`),
      );
      assert.equal(
        mine.filter((event) => event.type === 'task.output' && event.data.stream === 'stderr').length,
        1,
      );
      const resultSeq = mine.find((event) => event.type === 'task.result')!.seq;
      assert.ok(
        lines.every((event) => event.seq < resultSeq),
        `output of ${task.name} precedes its result`,
      );
    }
  });

  test('a runner past its timeout is killed and the task fails with TIMEOUT', async () => {
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: 'slow',
      agents: [{ role: 'engineer', task: 'x', runner: 'slow' }],
    });
    const done = await h.waitForSession(session.id);
    assert.equal(done.status, 'failed');
    assert.match(done.tasks[0]!.error!, /timed out after 1s/);
  });

  test('cancel kills the running child, cancels pending tasks and ends the session', async () => {
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: 'cancel me',
      strategy: 'sequential',
      agents: [
        { name: 'long', role: 'engineer', task: 'x', runner: 'sleep' },
        { name: 'next', role: 'tester', task: 'y', runner: 'ok' },
      ],
    });
    let outputSeenOnWake = false;
    const unwatch = h.engine.service.watchEvents(session.id, () => {
      void h.allEvents(session.id).then((events) => {
        if (events.some((event) => event.type === 'task.output')) outputSeenOnWake = true;
      });
    });
    const pid = await waitFor(async () => {
      const events = await h.allEvents(session.id);
      const line = events.find((event) => event.type === 'task.output')?.data.line;
      return typeof line === 'string' ? Number(line.split(' ')[1]) : undefined;
    });
    assert.ok(isAlive(pid));
    // Watchers (SSE) are woken by output lines, not only by status changes.
    await waitFor(() => (outputSeenOnWake ? true : undefined), 5000);
    unwatch();
    const cancelled = await h.engine.service.cancelSession(ACTOR, session.id);
    assert.equal(cancelled.status, 'cancelled');
    assert.deepEqual(
      cancelled.tasks.map((task) => task.status),
      ['cancelled', 'cancelled'],
    );
    await waitFor(() => (isAlive(pid) ? undefined : true), 8000);
    const again = await h.engine.service.cancelSession(ACTOR, session.id);
    assert.equal(again.status, 'cancelled');
    // Let the aborted run settle, then check nothing was written after the final event.
    await waitFor(() => (h.engine.queue.stats().ops > 0 ? true : undefined));
    await h.engine.queue.drain();
    const events = await h.allEvents(session.id);
    assert.equal(events.at(-1)!.type, 'session.finished');
    assert.equal(events.filter((event) => event.type === 'session.finished').length, 1);
  });

  test('cancelling a finished session is refused; another tenant cannot see it', async () => {
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: 'quick',
      agents: [{ role: 'engineer', task: 'x', runner: 'ok' }],
    });
    await h.waitForSession(session.id);
    await assert.rejects(
      () => h.engine.service.cancelSession(ACTOR, session.id),
      (error: unknown) => error instanceof AppError && error.code === 'INVALID_STATE',
    );
    const other = { tenantId: 'other', principalId: 'x' };
    for (const call of [
      () => h.engine.service.getSession(other, session.id),
      () => h.engine.service.cancelSession(other, session.id),
      () => h.engine.service.listEvents(other, session.id, 0, 10),
    ]) {
      await assert.rejects(
        call,
        (error: unknown) => error instanceof AppError && error.code === 'SESSION_NOT_FOUND',
      );
    }
  });
});

describe('graceful stop', { timeout: 30_000 }, () => {
  test('waits for the grace period, then aborts and releases the lease without counting the attempt', async () => {
    let aborted = 0;
    const hang: AgentRuntime = {
      kind: 'fake',
      run: (_task, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            aborted++;
            reject(ctx.signal.reason);
          });
        }),
    };
    const h = await createHarness({ llm: hang, concurrency: 2 });
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: 'hang',
      agents: [{ name: 'h', role: 'engineer', task: 'wait' }],
    });
    await waitFor(async () => {
      const detail = await h.engine.service.getSession(ACTOR, session.id);
      return detail.tasks[0]!.status === 'running' ? true : undefined;
    });
    await h.engine.stop({ graceMs: 50 });
    assert.equal(aborted, 1);
    const detail = await h.engine.service.getSession(ACTOR, session.id);
    assert.equal(detail.tasks[0]!.status, 'ready');
    assert.equal(detail.tasks[0]!.attempts, 0);
    assert.equal(detail.tasks[0]!.leaseOwner, null);
    const events = await h.allEvents(session.id);
    assert.equal(events.at(-1)!.data.reason, 'released at shutdown');
    await h.close();
  });

  test('a line a run released at shutdown left unfinished is not continued by the next run of that attempt', async () => {
    // The release gives the attempt number back, so the next run writes under the same attempt:
    // the released run's last line must end where its output ended.
    const streaming: AgentRuntime = {
      kind: 'fake',
      run: (_task, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.emitOutput('text', 'written before the stop');
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
        }),
    };
    const first = await createHarness({ llm: streaming });
    const { session } = await first.engine.service.createSession(ACTOR, {
      objective: 'stopped mid-line',
      agents: [{ name: 's', role: 'engineer', task: 'write' }],
    });
    // The unfinished line was stored as a partial piece, then the run went quiet.
    await waitFor(async () =>
      (await first.allEvents(session.id)).some((event) => event.type === 'task.output') ? true : undefined,
    );
    await first.engine.stop({ graceMs: 10 });
    await first.close({ keepDir: true });
    const again: AgentRuntime = {
      kind: 'fake',
      run: async (_task, ctx) => {
        ctx.emitOutput('text', 'the next run\n');
        return { output: 'done' };
      },
    };
    const second = await createHarness({ llm: again, dir: first.dir });
    try {
      const detail = await second.waitForSession(session.id);
      assert.equal(detail.status, 'completed');
      assert.equal(detail.tasks[0]!.attempts, 1, 'the released run gave its attempt back');
      // The text of each attempt as docs/api.md defines it: line + (partial ? '' : '\n').
      let text = '';
      for (const event of await second.allEvents(session.id)) {
        if (event.type !== 'task.output' || event.data.attempt !== 1) continue;
        text += `${event.data.line}${event.data.partial ? '' : '\n'}`;
      }
      assert.equal(text, 'written before the stop\nthe next run\n');
    } finally {
      await second.close();
    }
  });

  test('a run that answers just as the grace period ends is finished, not given back to run again', async () => {
    // The answer arrives after the abort (a command that exited as the grace ran out, a model
    // answer in flight): the work is done, so the task succeeds instead of running a second time.
    const late: AgentRuntime = {
      kind: 'fake',
      run: (_task, ctx) =>
        new Promise((resolve) => {
          ctx.signal.addEventListener('abort', () => setImmediate(() => resolve({ output: 'done anyway' })));
        }),
    };
    const h = await createHarness({ llm: late, concurrency: 1 });
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: 'late answer',
      agents: [{ name: 'l', role: 'engineer', task: 'answer' }],
    });
    await waitFor(async () => {
      const detail = await h.engine.service.getSession(ACTOR, session.id);
      return detail.tasks[0]!.status === 'running' ? true : undefined;
    });
    await h.engine.stop({ graceMs: 10 });
    const detail = await h.engine.service.getSession(ACTOR, session.id);
    assert.equal(detail.status, 'completed');
    assert.equal(detail.result, 'done anyway');
    assert.equal(detail.tasks[0]!.status, 'succeeded');
    assert.equal(detail.tasks[0]!.attempts, 1);
    await h.close();
  });

  test('a runtime that ignores abort does not block stop; its lease is released', async () => {
    const deaf: AgentRuntime = { kind: 'fake', run: () => new Promise(() => undefined) };
    const h = await createHarness({ llm: deaf, concurrency: 1 });
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: 'deaf',
      agents: [{ name: 'd', role: 'engineer', task: 'wait' }],
    });
    await waitFor(async () => {
      const detail = await h.engine.service.getSession(ACTOR, session.id);
      return detail.tasks[0]!.status === 'running' ? true : undefined;
    });
    await h.engine.stop({ graceMs: 10 });
    const detail = await h.engine.service.getSession(ACTOR, session.id);
    assert.equal(detail.tasks[0]!.status, 'ready');
    assert.equal(detail.tasks[0]!.leaseOwner, null);
    await h.close();
  });
});
