// Reading long session logs for MCP: the newest events and an agent's output come from the end of
// the log (or the agent's own stretch of it), however many events come before.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { type SessionDetail, type TaskRecord, ZERO_USAGE } from '../domain/types.ts';
import type { Actor, SessionService } from '../engine/session-service.ts';
import {
  createFakeSessionService,
  type FakeSessionService,
} from '../http/fake-session-service.test-support.ts';
import { findLogBoundary } from './session-log-search.ts';
import { listRecentEvents, readAgentOutput, toSessionStatus } from './session-view.ts';

const actor: Actor = { tenantId: 't1', principalId: 'p1' };

/** More events than any earlier fixed bound on log walks (20000). */
const LONG_LOG = 25_000;

/** Reads the service answered, by method. */
interface ReadCounts {
  forward: number;
  backward: number;
}

/**
 * The fake, with pages capped at 100 events as the REST API caps them for remote mode, counting
 * the reads made through it.
 */
function withRestPageCap(service: FakeSessionService, reads: ReadCounts): SessionService {
  return {
    ...service,
    listEvents: (a, id, after, limit) => {
      reads.forward += 1;
      return service.listEvents(a, id, after, Math.min(limit, 100));
    },
    listEventsBefore: (a, id, before, limit) => {
      reads.backward += 1;
      return service.listEventsBefore(a, id, before, Math.min(limit, 100));
    },
  };
}

function task(detail: SessionDetail, fields: Partial<TaskRecord> & { id: string; name: string }): TaskRecord {
  return {
    tenantId: detail.tenantId,
    sessionId: detail.id,
    kind: 'agent',
    role: 'tester',
    agentId: null,
    instructions: '',
    runner: 'echo',
    phase: 0,
    status: 'running',
    dependsOn: [],
    attempts: 1,
    maxAttempts: 2,
    leaseOwner: null,
    leaseExpiresAt: null,
    result: null,
    error: null,
    usage: { ...ZERO_USAGE },
    createdAt: detail.createdAt,
    readyAt: detail.createdAt,
    startedAt: detail.createdAt,
    finishedAt: null,
    ...fields,
  } as TaskRecord;
}

describe('session logs longer than a walk from the start', () => {
  let fake: FakeSessionService;
  let service: SessionService;
  const reads: ReadCounts = { forward: 0, backward: 0 };
  const resetReads = (): void => {
    reads.forward = 0;
    reads.backward = 0;
  };
  let detail: SessionDetail;
  let early: TaskRecord;
  let late: TaskRecord;

  before(async () => {
    fake = createFakeSessionService();
    service = withRestPageCap(fake, reads);
    ({ session: detail } = await fake.createSession(actor, {
      objective: 'long',
      agents: [{ role: 'tester', task: 't', runner: 'echo' }],
    } as never));
    // `early` prints a few lines and fails without a result; `chatty` then prints a lot; `late`
    // (after `chatty`) prints its lines at the end of the log.
    fake.appendEvent(detail.id, 'task.output', { taskId: 'early', line: 'early one' });
    fake.appendEvent(detail.id, 'task.output', { taskId: 'early', line: 'early two' });
    const earlyEnd = fake.appendEvent(detail.id, 'task.result', { taskId: 'early', status: 'failed' });
    for (let i = 0; i < LONG_LOG; i += 1)
      fake.appendEvent(detail.id, 'task.output', { taskId: 'chatty', line: `c${i}` });
    const chattyEnd = fake.appendEvent(detail.id, 'task.result', { taskId: 'chatty', status: 'succeeded' });
    fake.appendEvent(detail.id, 'task.output', { taskId: 'late', line: 'late ', partial: true });
    fake.appendEvent(detail.id, 'task.output', { taskId: 'late', line: 'one' });
    fake.appendEvent(detail.id, 'task.output', { taskId: 'late', line: 'late two' });
    early = task(detail, {
      id: 'early',
      name: 'early',
      status: 'failed',
      error: 'boom',
      finishedAt: earlyEnd.createdAt,
    });
    const chatty = task(detail, {
      id: 'chatty',
      name: 'chatty',
      status: 'succeeded',
      result: 'ok',
      finishedAt: chattyEnd.createdAt,
    });
    late = task(detail, { id: 'late', name: 'late', dependsOn: ['chatty'], createdAt: detail.createdAt });
    detail = { ...detail, tasks: [early, chatty, late] };
  });

  test('findLogBoundary finds where a time condition stops holding, from either end', async () => {
    const all = await fake.listEvents(actor, detail.id, 0, 1_000_000);
    const log = { service, actor, sessionId: detail.id };
    for (const index of [0, 1, 2, 3, 4_000, all.length - 2, all.length - 1]) {
      const at = all[index]?.createdAt ?? 0;
      const boundary = await findLogBoundary(log, (event) => event.createdAt < at);
      assert.equal(boundary, all[index]?.seq, `boundary at index ${index}`);
    }
    assert.equal(await findLogBoundary(log, () => true), null, 'holds for the whole log');
    resetReads();
    // A point near the end of a 25,000-event log is found in a few reads, not by a walk from the start.
    await findLogBoundary(log, (event) => event.createdAt < (all.at(-3)?.createdAt ?? 0));
    assert.ok(reads.backward <= 6, `${reads.backward} reads`);
    assert.equal(reads.forward, 0);
  });

  test('recent_events returns the last N events in one read', async () => {
    const all = await fake.listEvents(actor, detail.id, 0, 1_000_000);
    resetReads();
    const recent = await listRecentEvents(service, actor, detail.id, 5);
    assert.deepEqual(
      recent.map((event) => event.seq),
      all.slice(-5).map((event) => event.seq),
    );
    assert.equal(recent.at(-1)?.data.line, 'late two');
    assert.deepEqual(reads, { forward: 0, backward: 1 });
  });

  test('more recent events than one capped page are read page by page back', async () => {
    const all = await fake.listEvents(actor, detail.id, 0, 1_000_000);
    resetReads();
    const recent = await listRecentEvents(service, actor, detail.id, 250);
    assert.deepEqual(
      recent.map((event) => event.seq),
      all.slice(-250).map((event) => event.seq),
    );
    assert.equal(reads.backward, 3);
  });

  test('an agent whose output starts after the first 20000 events has it read', async () => {
    assert.equal(await readAgentOutput(service, actor, detail, late), 'late one\nlate two');
  });

  test('a finished agent early in a long log keeps its output and error', async () => {
    assert.equal(await readAgentOutput(service, actor, detail, early), 'early one\nearly two\nerror: boom');
  });

  test('a line an earlier attempt left unfinished is not continued by the next attempt', async () => {
    const { session } = await fake.createSession(actor, { objective: 'retried', agents: [] } as never);
    fake.appendEvent(session.id, 'task.output', { taskId: 'r', line: 'SYNTH', partial: true, attempt: 1 });
    fake.appendEvent(session.id, 'task.output', { taskId: 'r', line: 'SYNTHESIS done', attempt: 2 });
    const retried = task(session, { id: 'r', name: 'r', attempts: 2 });
    const view = { ...session, tasks: [retried] };
    assert.equal(await readAgentOutput(service, actor, view, retried), 'SYNTH\nSYNTHESIS done');
  });

  test('a short log still gives every recent event', async () => {
    const { session } = await fake.createSession(actor, { objective: 'short', agents: [] } as never);
    fake.appendEvent(session.id, 'task.output', { taskId: 'x', line: 'only' });
    const recent = await listRecentEvents(service, actor, session.id, 10);
    assert.deepEqual(
      recent.map((event) => event.type),
      ['session.created', 'task.output'],
    );
  });
});

describe('the session status document', () => {
  test('shows a task’s usage per provider and model when models served it, and no models otherwise', async () => {
    const fake = createFakeSessionService();
    const { session } = await fake.createSession(actor, {
      objective: 'o',
      agents: [{ role: 'tester', task: 't', runner: 'echo' }],
    } as never);
    const models = [
      { provider: 'local', model: 'm', inputTokens: 40, outputTokens: 8, cacheReadTokens: 0, costUsd: 0.04 },
      { provider: 'backup', model: 'b', inputTokens: 200, outputTokens: 9, cacheReadTokens: 0, costUsd: 0.5 },
    ];
    const served = task(session, { id: 'a', name: 'a', status: 'succeeded', models });
    const runner = task(session, { id: 'b', name: 'b', status: 'succeeded' });
    const view = toSessionStatus({ ...session, tasks: [served, runner] });
    const tasks = view.tasks as Array<Record<string, unknown>>;
    assert.deepEqual(tasks[0]?.models, models);
    assert.equal('models' in (tasks[1] ?? {}), false);
  });
});

describe('texts cut to a bound', () => {
  /** A character outside the BMP: two UTF-16 units, a surrogate pair. */
  const EMOJI = '\u{1F600}';

  test('never split a surrogate pair (a lone surrogate is invalid in strict JSON parsers)', async () => {
    const fake = createFakeSessionService();
    const { session } = await fake.createSession(actor, {
      objective: 'o',
      agents: [{ role: 'tester', task: 't', runner: 'echo' }],
    } as never);
    // Each text has a pair straddling its bound: the result's 20 000, the preview's 2000, an event's 2000.
    const long = (bound: number): string => `${'a'.repeat(bound - 1)}${EMOJI}${'b'.repeat(10)}`;
    const done = task(session, { id: 'a', name: 'a', status: 'succeeded', result: long(2_000) });
    const line = fake.appendEvent(session.id, 'task.output', { taskId: 'a', line: long(2_000) });
    const view = toSessionStatus({ ...session, result: long(20_000), tasks: [done] }, [line]);
    // Compared by length and shape: a failing assertion should not print 20 000 characters.
    const result = view.result as string;
    assert.deepEqual([result.length, result.isWellFormed(), view.resultTruncated], [19_999, true, true]);
    const preview = (view.tasks as Array<Record<string, unknown>>)[0]?.resultPreview as string;
    assert.deepEqual([preview.length, preview.isWellFormed()], [1_999, true]);
    const clipped = (view.recentEvents as Array<{ data: { line: string } }>)[0]?.data.line ?? '';
    assert.deepEqual([clipped.length, clipped.isWellFormed(), clipped.endsWith('a…')], [2_000, true, true]);

    // An agent's output past 1 MB keeps its newest text, starting after a whole character.
    const running = task(session, { id: 'r', name: 'r', result: null });
    fake.appendEvent(session.id, 'task.output', {
      taskId: 'r',
      line: `${'x'.repeat(10)}${EMOJI.repeat(500_001)}`,
    });
    const output = await readAgentOutput(fake, actor, { ...session, tasks: [running] }, running);
    assert.deepEqual([output.length, output.isWellFormed(), output.startsWith(EMOJI)], [999_998, true, true]);
  });
});
