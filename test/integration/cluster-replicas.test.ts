// Cluster mode in one process: three app instances (store, engine, HTTP each) on ONE PostgreSQL
// database. Sessions submitted to any instance are executed by the worker replicas, each task is
// completed exactly once, an SSE stream on one replica follows events written by another, and a
// stream resumes with Last-Event-ID on a third. Worker polls and the notifier sweep are set to a
// minute, so only LISTEN/NOTIFY wake-ups can finish the work within the test's time limit.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { useReplicaSuite } from '../fixtures/replica-suite.ts';
import { readAllEvents, requestJson, type TestServer, waitForSession } from '../fixtures/server.ts';
import { readSseFrames } from '../fixtures/sse.ts';

interface EventDto {
  seq: number;
  type: string;
  data: Record<string, unknown>;
}

function replicaConfig(url: string, concurrency: number): Record<string, unknown> {
  return {
    store: { url, synchronous: 'normal', poolSize: 5 },
    // A minute: without cross-replica NOTIFY nothing would be claimed or streamed in time.
    workers: { concurrency, pollIntervalMs: 60_000 },
  };
}

describe('cluster: three replicas on one PostgreSQL database', { timeout: 180_000 }, () => {
  const suite = useReplicaSuite();
  let api: TestServer;
  let workerB: TestServer;
  let workerC: TestServer;
  before(async () => {
    const { url } = suite.database;
    // A is API only (no task slots): everything it accepts must run on B or C.
    api = await suite.start({ config: replicaConfig(url, 0) });
    workerB = await suite.start({ config: replicaConfig(url, 4) });
    workerC = await suite.start({ config: replicaConfig(url, 4) });
  });

  test('sessions submitted to every replica complete, each task exactly once', async () => {
    const replicas = [api, workerB, workerC];
    const ids: string[] = [];
    for (let i = 0; i < 24; i++) {
      const target = replicas[i % replicas.length]!;
      const created = await requestJson<{ id: string }>(`${target.url}/v1/sessions`, {
        method: 'POST',
        headers: { 'idempotency-key': `cluster-${i}` },
        body: {
          objective: `cluster ${i}`,
          agents: [
            { name: 'a', role: 'engineer', task: 'first', runner: 'echo' },
            { name: 'b', role: 'tester', task: 'second', runner: 'ok', depends_on: ['a'] },
            { name: 'c', role: 'reviewer', task: 'third', runner: 'echo', depends_on: ['a'] },
          ],
        },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      ids.push(created.body.id);
    }
    // The same key on another replica returns the first session.
    const replay = await requestJson<{ id: string }>(`${workerC.url}/v1/sessions`, {
      method: 'POST',
      headers: { 'idempotency-key': 'cluster-0' },
      body: {
        objective: 'cluster 0',
        agents: [
          { name: 'a', role: 'engineer', task: 'first', runner: 'echo' },
          { name: 'b', role: 'tester', task: 'second', runner: 'ok', depends_on: ['a'] },
          { name: 'c', role: 'reviewer', task: 'third', runner: 'echo', depends_on: ['a'] },
        ],
      },
    });
    assert.equal(replay.body.id, ids[0]);

    for (const [index, id] of ids.entries()) {
      const reader = replicas[(index + 1) % replicas.length]!;
      const done = await waitForSession<{ status: string; error?: string }>(
        reader.url,
        id,
        undefined,
        60_000,
      );
      assert.equal(done.status, 'completed', done.error ?? '');
      const events = await readAllEvents<EventDto>(reader.url, id);
      assert.deepEqual(
        events.map((event) => event.seq),
        events.map((_, i) => i + 1),
        'event seqs are contiguous',
      );
      const results = events.filter((event) => event.type === 'task.result');
      assert.equal(results.length, 3, 'each of the three tasks completed exactly once');
      assert.equal(new Set(results.map((event) => event.data.taskId)).size, 3);
      assert.equal(events.filter((event) => event.type === 'session.finished').length, 1);
    }
    const finishedOn = async (server: TestServer) => {
      const text = await server.app.metrics.registry.getSingleMetricAsString('maos_task_duration_seconds');
      return [...text.matchAll(/maos_task_duration_seconds_count\{[^}]*\} (\d+)/g)].reduce(
        (sum, match) => sum + Number(match[1]),
        0,
      );
    };
    assert.equal(await finishedOn(api), 0, 'the API-only replica ran no task');
    const [b, c] = [await finishedOn(workerB), await finishedOn(workerC)];
    assert.equal(b + c, ids.length * 3, 'every task ran once across the worker replicas');
    assert.ok(b > 0 && c > 0, `both worker replicas took work (B ${b}, C ${c})`);
  });

  test('an SSE stream on one replica follows a session written by others and resumes on a third', async () => {
    const created = await requestJson<{ id: string }>(`${api.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'streamed across replicas',
        agents: [1, 2, 3].map((n) => ({ name: `t${n}`, role: 'qa', task: `count ${n}`, runner: 'count' })),
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    // Head on B (the session is written by B or C, created on A), the rest on C from Last-Event-ID.
    const head = await readSseFrames(`${workerB.url}/v1/sessions/${id}/events`, {}, 5);
    assert.equal(head.length, 5);
    const tail = await readSseFrames(`${workerC.url}/v1/sessions/${id}/events`, {
      'last-event-id': String(head.at(-1)!.id),
    });
    const stored = await readAllEvents<EventDto>(api.url, id);
    const streamed = [...head, ...tail];
    assert.deepEqual(
      streamed.map((frame) => Number(frame.id)),
      stored.map((event) => event.seq),
      'head + resumed tail = the whole log, in order, without gaps or duplicates',
    );
    assert.equal(tail.at(-1)?.event, 'session.finished');
    assert.ok(stored.some((event) => event.type === 'task.output'));
  });
});
