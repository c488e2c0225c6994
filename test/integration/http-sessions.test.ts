// The real server (store, engine, command runners) driven over HTTP: pipeline order, failure
// propagation, cancel killing the child process, idempotency and pagination.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isAlive, waitUntilGone } from '../fixtures/processes.ts';
import {
  readAllEvents,
  requestJson,
  startTestServer,
  type TestServer,
  waitForSession,
} from '../fixtures/server.ts';

interface Task {
  id: string;
  name: string;
  status: string;
  error: string | null;
  attempts: number;
  startedAt: string | null;
  finishedAt: string | null;
}
interface Session {
  id: string;
  status: string;
  error: string | null;
  tasks: Task[];
}
interface Event {
  seq: number;
  type: string;
  data: Record<string, unknown>;
}

function taskNamed(session: Session, name: string): Task {
  const task = session.tasks.find((t) => t.name === name);
  assert.ok(task, `task ${name} exists`);
  return task;
}

describe('sessions over HTTP with the real engine', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => server?.close());

  test('a 3-task pipeline runs in dependency order and completes', async () => {
    const created = await requestJson<Session>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'three steps',
        strategy: 'pipeline',
        agents: [
          { name: 'c', role: 'qa', task: 'third', runner: 'echo', depends_on: ['b'] },
          { name: 'a', role: 'qa', task: 'first', runner: 'echo' },
          { name: 'b', role: 'qa', task: 'second', runner: 'echo', depends_on: ['a'] },
        ],
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const session = await waitForSession<Session>(server.url, created.body.id);
    assert.equal(session.status, 'completed', JSON.stringify(session));
    const [a, b, c] = ['a', 'b', 'c'].map((name) => taskNamed(session, name)) as [Task, Task, Task];
    for (const task of [a, b, c]) {
      assert.equal(task.status, 'succeeded');
      assert.equal(task.attempts, 1);
    }
    assert.ok(Date.parse(b.startedAt ?? '') >= Date.parse(a.finishedAt ?? ''), 'b starts after a ends');
    assert.ok(Date.parse(c.startedAt ?? '') >= Date.parse(b.finishedAt ?? ''), 'c starts after b ends');

    const events = await readAllEvents<Event>(server.url, session.id);
    assert.deepEqual(
      events.map((e) => e.seq),
      events.map((_, i) => i + 1),
      'seqs are contiguous from 1',
    );
    assert.equal(events.at(-1)?.type, 'session.finished');
    const seqOf = (name: string, to: string): number => {
      const event = events.find((e) => e.type === 'task.status' && e.data.name === name && e.data.to === to);
      assert.ok(event, `task.status ${name} → ${to}`);
      return event.seq;
    };
    assert.ok(seqOf('a', 'succeeded') < seqOf('b', 'running'));
    assert.ok(seqOf('b', 'succeeded') < seqOf('c', 'running'));
    const outputs = events.filter((e) => e.type === 'task.output').map((e) => e.data.line);
    assert.ok(outputs.includes('task=first'), `the runner saw its task text: ${JSON.stringify(outputs)}`);

    const plans = await requestJson<{ items: Array<{ version: number; diff: unknown }> }>(
      `${server.url}/v1/sessions/${session.id}/plans`,
    );
    assert.equal(plans.status, 200, JSON.stringify(plans.body));
    assert.deepEqual(
      plans.body.items.map((item) => [item.version, item.diff]),
      [[1, null]],
    );
  });

  test('a failing task fails its dependants and the session, with a summary', async () => {
    const created = await requestJson<Session>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'fails',
        strategy: 'pipeline',
        agents: [
          { name: 'broken', role: 'qa', task: 'explode', runner: 'fail' },
          { name: 'after', role: 'qa', task: 'never runs', runner: 'ok', depends_on: ['broken'] },
          { name: 'last', role: 'qa', task: 'never runs', runner: 'ok', depends_on: ['after'] },
        ],
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const session = await waitForSession<Session>(server.url, created.body.id);
    assert.equal(session.status, 'failed');
    assert.ok(session.error && session.error.length > 0, 'the session says why it failed');
    assert.match(session.error ?? '', /broken/);
    const broken = taskNamed(session, 'broken');
    assert.equal(broken.status, 'failed');
    assert.match(broken.error ?? '', /boom/);
    for (const name of ['after', 'last']) {
      const task = taskNamed(session, name);
      assert.ok(['failed', 'cancelled'].includes(task.status), `${name} is ${task.status}`);
      assert.equal(task.startedAt, null, `${name} never started`);
    }
  });

  test('cancel kills the running child process and ends the session cancelled', async () => {
    const created = await requestJson<Session>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'long',
        agents: [{ name: 'sleeper', role: 'qa', task: 'wait', runner: 'pid' }],
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    let pid = 0;
    const deadline = Date.now() + 15_000;
    while (pid === 0 && Date.now() < deadline) {
      const events = await readAllEvents<Event>(server.url, id);
      const line = events.find((e) => e.type === 'task.output' && String(e.data.line).startsWith('pid='));
      if (line) pid = Number(String(line.data.line).slice(4));
      else await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(pid > 0, 'the runner printed its pid');
    assert.ok(isAlive(pid), 'the child is running before cancel');

    const cancelled = await requestJson<Session>(`${server.url}/v1/sessions/${id}/cancel`, {
      method: 'POST',
    });
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
    const session = await waitForSession<Session>(server.url, id);
    assert.equal(session.status, 'cancelled');
    assert.equal(taskNamed(session, 'sleeper').status, 'cancelled');
    assert.equal(await waitUntilGone(pid), true, `process ${pid} was killed`);
    const events = await readAllEvents<Event>(server.url, id);
    assert.equal(events.at(-1)?.type, 'session.finished');
    assert.equal(events.at(-1)?.data.status, 'cancelled');

    const again = await requestJson<Session>(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
    assert.equal(again.status, 200, 'cancelling a cancelled session is idempotent');
  });

  test('Idempotency-Key: a replay returns the same session (200), another body is 409', async () => {
    const body = { objective: 'once', agents: [{ role: 'qa', task: 't', runner: 'ok' }] };
    const headers = { 'idempotency-key': `idem-${Date.now()}` };
    const first = await requestJson<Session>(`${server.url}/v1/sessions`, { method: 'POST', body, headers });
    const replay = await requestJson<Session>(`${server.url}/v1/sessions`, { method: 'POST', body, headers });
    assert.equal(first.status, 201);
    assert.equal(replay.status, 200);
    assert.equal(replay.body.id, first.body.id);
    const other = await requestJson<{ code: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { ...body, objective: 'twice' },
      headers,
    });
    assert.equal(other.status, 409);
    assert.equal(other.body.code, 'IDEMPOTENCY_KEY_REUSED');
    assert.match(String(other.headers.get('content-type')), /^application\/problem\+json/);
  });

  test('a session id written in upper case names the same session (UUIDs are case-insensitive)', async () => {
    const created = await requestJson<Session>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'case', agents: [{ role: 'qa', task: 't', runner: 'fail' }] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    const upper = id.toUpperCase();
    assert.notEqual(upper, id);
    await waitForSession(server.url, id);
    const shown = await requestJson<Session>(`${server.url}/v1/sessions/${upper}`);
    assert.equal(shown.status, 200, JSON.stringify(shown.body));
    assert.equal(shown.body.id, id, 'answered with the id as the server wrote it');
    for (const path of ['events', 'plans']) {
      const read = await requestJson(`${server.url}/v1/sessions/${upper}/${path}`);
      assert.equal(read.status, 200, `${path}: ${JSON.stringify(read.body)}`);
    }
    const retried = await requestJson<Session & { retryOf: string }>(
      `${server.url}/v1/sessions/${upper}/retry`,
      { method: 'POST' },
    );
    assert.equal(retried.status, 201, JSON.stringify(retried.body));
    assert.equal(retried.body.retryOf, id);
    const retries = await requestJson<{ items: Session[] }>(`${server.url}/v1/sessions?retryOf=${upper}`);
    assert.deepEqual(
      retries.body.items.map((s) => s.id),
      [retried.body.id],
    );
    await waitForSession(server.url, retried.body.id);
    const deleted = await requestJson(`${server.url}/v1/sessions/${upper}`, { method: 'DELETE' });
    assert.equal(deleted.status, 204, JSON.stringify(deleted.body));
  });

  test('GET /v1/sessions pages through every session exactly once', async () => {
    const local = await startTestServer({ config: { workers: { concurrency: 0 } } });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        const created = await requestJson<Session>(`${local.url}/v1/sessions`, {
          method: 'POST',
          body: { objective: `s${i}`, agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
        });
        assert.equal(created.status, 201);
        ids.push(created.body.id);
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
        const page = await requestJson<{ items: Session[]; nextCursor: string | null }>(
          `${local.url}/v1/sessions?limit=3${query}`,
        );
        assert.equal(page.status, 200, JSON.stringify(page.body));
        assert.ok(page.body.items.length <= 3);
        seen.push(...page.body.items.map((s) => s.id));
        cursor = page.body.nextCursor;
        pages++;
      } while (cursor !== null && pages < 10);
      assert.equal(pages, 3);
      assert.deepEqual([...seen].sort(), [...ids].sort(), 'every session exactly once');
      assert.deepEqual(seen, [...ids].reverse(), 'newest first');
      const pending = await requestJson<{ items: Session[] }>(`${local.url}/v1/sessions?status=completed`);
      assert.deepEqual(pending.body.items, []);
    } finally {
      await local.close();
    }
  });

  test('a limit of any number of digits above http.maxPageSize is lowered to it on every page route', async () => {
    const local = await startTestServer({
      config: { workers: { concurrency: 0 }, http: { maxPageSize: 2 } },
    });
    try {
      let id = '';
      for (let i = 0; i < 3; i++) {
        const created = await requestJson<Session>(`${local.url}/v1/sessions`, {
          method: 'POST',
          body: { objective: `s${i}`, agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
        });
        assert.equal(created.status, 201);
        id = created.body.id;
      }
      const huge = '9'.repeat(30);
      const sessions = await requestJson<{ items: Session[] }>(`${local.url}/v1/sessions?limit=${huge}`);
      assert.equal(sessions.status, 200, JSON.stringify(sessions.body));
      assert.equal(sessions.body.items.length, 2);
      for (const path of [
        `/v1/sessions/${id}/events?limit=${huge}`,
        `/v1/sessions/${id}/events?order=desc&limit=${huge}`,
        `/v1/audit?limit=${huge}`,
      ]) {
        const page = await requestJson<{ items: unknown[] }>(`${local.url}${path}`);
        assert.equal(page.status, 200, `${path}: ${JSON.stringify(page.body)}`);
        assert.ok(page.body.items.length <= 2, path);
      }
      for (const value of [`-${huge}`, `${huge}x`, `0x${huge}`]) {
        const refused = await requestJson<{ code: string }>(`${local.url}/v1/sessions?limit=${value}`);
        assert.equal(refused.status, 400, value);
        assert.equal(refused.body.code, 'VALIDATION_FAILED');
      }
    } finally {
      await local.close();
    }
  });
});
