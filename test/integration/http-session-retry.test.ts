// POST /v1/sessions/:id/retry on the real server, on SQLite and PostgreSQL: a failed pipeline is
// retried with its succeeded task carried over (its runner does not run again, its result and the
// files it left in the workspace are there for the tasks that run anew), the retry completes and
// names the original, which stays failed; a cancelled session is retried too; the Idempotency-Key
// makes a retry safe to repeat; a new budget replaces the original's; sessions that did not fail
// or were not cancelled, unknown ones and malformed bodies are refused with stable codes.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';
import {
  readAllEvents,
  requestJson,
  startTestServer,
  TEST_RUNNERS,
  type TestServer,
  waitForSession,
} from '../fixtures/server.ts';

interface Task {
  name: string;
  status: string;
  attempts: number;
  result: string | null;
  usage: { inputTokens: number };
}
interface Session {
  id: string;
  status: string;
  error: string | null;
  result: string | null;
  retryOf: string | null;
  objective: string;
  tasks: Task[];
  budget: { maxTokens: number | null } | null;
}
interface Problem {
  code: string;
  detail: string;
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`retrying a session (${backend})`, { timeout: 120_000 }, () => {
    let server: TestServer;
    let database: TestDatabase | undefined;
    const scratch = mkdtempSync(join(tmpdir(), 'maos-retry-'));
    const counter = join(scratch, 'first-runs');
    const flag = join(scratch, 'fixed');

    before(async () => {
      database = backend === 'postgres' ? await createTestDatabase() : undefined;
      server = await startTestServer({
        config: {
          ...(database ? { store: { url: database.url } } : {}),
          runners: {
            ...TEST_RUNNERS,
            // Leaves a file in the session's workspace and counts its runs outside it.
            first: {
              command: [
                'sh',
                '-c',
                `echo run >> '${counter}'; echo made > made-by-first.txt; echo first-out`,
              ],
            },
            // Needs the file `first` left, and fails until the flag exists.
            second: {
              command: [
                'sh',
                '-c',
                `cat made-by-first.txt && test -e '${flag}' || { echo not-yet >&2; exit 4; }`,
              ],
            },
            // Runs until cancelled while the flag is missing.
            hang: { command: ['sh', '-c', `test -e '${flag}' && echo fine || exec sleep 30`] },
          },
        },
      });
    });
    after(async () => {
      await server?.close();
      await database?.drop();
      rmSync(scratch, { recursive: true, force: true });
    });

    const submit = async (body: unknown) => {
      const created = await requestJson<Session>(`${server.url}/v1/sessions`, { method: 'POST', body });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      return created.body.id;
    };
    const retry = (id: string, body?: unknown, headers: Record<string, string> = {}) =>
      requestJson<Session & Problem>(`${server.url}/v1/sessions/${id}/retry`, {
        method: 'POST',
        ...(body === undefined ? {} : { body }),
        headers,
      });
    const pipeline = (second = 'second') => ({
      objective: 'Build, then check',
      agents: [
        { name: 'build', role: 'engineer', task: 'build it', runner: 'first' },
        { name: 'check', role: 'qa', task: 'check it', runner: second, depends_on: ['build'] },
        { name: 'report', role: 'reviewer', task: 'report', runner: 'echo', depends_on: ['check'] },
      ],
      budget: { maxTokens: 5000 },
    });

    test('a failed pipeline runs again from its failed task; the succeeded one is carried over', async () => {
      rmSync(flag, { force: true });
      writeFileSync(counter, '');
      const id = await submit(pipeline());
      const failed = await waitForSession<Session>(server.url, id);
      assert.equal(failed.status, 'failed');
      assert.deepEqual(
        failed.tasks.map((t) => t.status),
        ['succeeded', 'failed', 'cancelled'],
      );
      writeFileSync(flag, '');

      const answer = await retry(id, undefined, { 'idempotency-key': `retry-${backend}` });
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      assert.equal(answer.headers.get('location'), `/v1/sessions/${answer.body.id}`);
      assert.notEqual(answer.body.id, id);
      assert.equal(answer.body.retryOf, id);
      assert.equal(answer.body.objective, 'Build, then check');
      const done = await waitForSession<Session>(server.url, answer.body.id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.equal(done.result?.trim(), 'task=report');
      const [build, check, report] = done.tasks;
      assert.equal(build?.status, 'succeeded');
      assert.equal(build?.result?.trim(), 'first-out', 'the carried task keeps its result');
      assert.equal(check?.status, 'succeeded');
      assert.match(check?.result ?? '', /made/, 'the workspace file of the carried task is there');
      assert.equal(report?.status, 'succeeded');
      assert.equal(readFileSync(counter, 'utf8'), 'run\n', 'the carried task did not run again');
      assert.equal(done.budget?.maxTokens, 5000, "the original's budget applies");

      const original = await requestJson<Session>(`${server.url}/v1/sessions/${id}`);
      assert.equal(original.body.status, 'failed', 'the original stays as it ended');
      assert.equal(original.body.retryOf, null);
      const retries = await requestJson<{ items: Session[] }>(`${server.url}/v1/sessions?retryOf=${id}`);
      assert.deepEqual(
        retries.body.items.map((s) => [s.id, s.retryOf]),
        [[done.id, id]],
      );
      const badFilter = await requestJson<Problem>(`${server.url}/v1/sessions?retryOf=x`);
      assert.equal(badFilter.status, 400);

      const events = await readAllEvents<{ seq: number; type: string; data: Record<string, unknown> }>(
        server.url,
        done.id,
      );
      const created = events.find((event) => event.type === 'session.created');
      assert.equal(created?.data.retryOf, id);
      assert.deepEqual(created?.data.carried, ['build']);
      assert.equal(events.at(-1)?.type, 'session.finished');

      // The same key again: the retry it made, not a second one.
      const replay = await retry(id, undefined, { 'idempotency-key': `retry-${backend}` });
      assert.equal(replay.status, 200);
      assert.equal(replay.body.id, done.id);
      const changed = await retry(
        id,
        { budget: { maxTokens: 7 } },
        { 'idempotency-key': `retry-${backend}` },
      );
      assert.equal(changed.status, 409);
      assert.equal(changed.body.code, 'IDEMPOTENCY_KEY_REUSED');

      // Audited apart from submits, naming the session retried.
      const audit = await requestJson<{ items: Array<{ outcome: string; target: { id: string | null } }> }>(
        `${server.url}/v1/audit?action=sessions:retry`,
      );
      assert.deepEqual(
        audit.body.items.map((record) => [record.outcome, record.target.id]),
        [
          ['success', id],
          ['success', id],
          ['failure', id],
        ],
      );
    });

    test('tasks named to run again run with their dependants, also in a completed session', async () => {
      writeFileSync(flag, '');
      writeFileSync(counter, '');
      const id = await submit(pipeline());
      assert.equal((await waitForSession<Session>(server.url, id)).status, 'completed');
      const plain = await retry(id);
      assert.equal(plain.status, 409, 'a completed session needs tasks named to run again');
      assert.equal(plain.body.code, 'INVALID_STATE');

      const answer = await retry(id, { rerun: ['check'] });
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      const done = await waitForSession<Session>(server.url, answer.body.id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.deepEqual(
        done.tasks.map((t) => [t.name, t.status, t.attempts]),
        [
          ['build', 'succeeded', 1],
          ['check', 'succeeded', 1],
          ['report', 'succeeded', 1],
        ],
      );
      assert.equal(readFileSync(counter, 'utf8'), 'run\n', 'build ran once, in the original');
      const events = await readAllEvents<{ seq: number; type: string; data: Record<string, unknown> }>(
        server.url,
        done.id,
      );
      const created = events.find((event) => event.type === 'session.created');
      assert.deepEqual([created?.data.carried, created?.data.rerun], [['build'], ['check']]);

      for (const rerun of [['deploy'], ['build', 'nope']]) {
        const bad = await retry(id, { rerun });
        assert.equal(bad.status, 400, JSON.stringify(rerun));
        assert.equal(bad.body.code, 'VALIDATION_FAILED');
        assert.match(bad.body.detail, /has no task (deploy|nope) to run again/);
      }
      const malformed = await retry(id, { rerun: [] });
      assert.equal(malformed.status, 400);
    });

    test('a cancelled session is retried with a new budget', async () => {
      rmSync(flag, { force: true });
      const id = await submit(pipeline('hang'));
      await waitForSession<Session>(server.url, id, (s) => s.tasks[1]?.status === 'running');
      const cancelled = await requestJson<Session>(`${server.url}/v1/sessions/${id}/cancel`, {
        method: 'POST',
      });
      assert.equal(cancelled.body.status, 'cancelled');
      writeFileSync(flag, '');
      const answer = await retry(id, { budget: { maxTokens: 9000 } });
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      const done = await waitForSession<Session>(server.url, answer.body.id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.deepEqual(
        done.tasks.map((t) => [t.name, t.status, t.attempts]),
        [
          ['build', 'succeeded', 1],
          ['check', 'succeeded', 1],
          ['report', 'succeeded', 1],
        ],
      );
      assert.equal(done.budget?.maxTokens, 9000);
    });

    test('only failed or cancelled sessions of the tenant can be retried; bad bodies are refused', async () => {
      const completed = await submit({
        objective: 'done',
        agents: [{ role: 'engineer', task: 'x', runner: 'ok' }],
      });
      await waitForSession<Session>(server.url, completed);
      const refused = await retry(completed);
      assert.equal(refused.status, 409);
      assert.equal(refused.body.code, 'INVALID_STATE');
      assert.match(refused.body.detail, /completed: there is nothing to retry/);

      const running = await submit({
        objective: 'busy',
        agents: [{ role: 'engineer', task: 'x', runner: 'sleep' }],
      });
      const busy = await retry(running);
      assert.equal(busy.status, 409);
      assert.match(busy.body.detail, /only a failed or cancelled session can be retried \(cancel it first\)/);
      await requestJson(`${server.url}/v1/sessions/${running}/cancel`, { method: 'POST' });

      const unknown = await retry('0193aaaa-aaaa-7aaa-8aaa-aaaaaaaaaaaa');
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.code, 'SESSION_NOT_FOUND');

      const failed = await submit({
        objective: 'boom',
        agents: [{ role: 'engineer', task: 'x', runner: 'fail' }],
      });
      await waitForSession<Session>(server.url, failed);
      for (const body of [{ budget: { maxTokens: -1 } }, { approval: 'none' }]) {
        const bad = await retry(failed, body);
        assert.equal(bad.status, 400, JSON.stringify(body));
        assert.equal(bad.body.code, 'VALIDATION_FAILED');
      }
      const sessions = await requestJson<{ items: Session[] }>(`${server.url}/v1/sessions?limit=100`);
      assert.equal(
        sessions.body.items.filter((s) => s.retryOf === failed).length,
        0,
        'a refused retry stores nothing',
      );
    });
  });
}
