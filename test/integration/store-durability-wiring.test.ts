// How `maos serve` wires SQLite durability (ADR 0002): with `store.synchronous: full` the engine's
// own progress is acknowledged at commit and flushed in the background, unless
// `store.syncEngineCommits` asks for every engine commit to wait for its flush; `normal` flushes
// nothing. In every case a session read through the API is on disk before it is answered.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EngineInternals } from '../../src/engine/index.ts';
import { requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';

async function runChain(store: Record<string, unknown>) {
  const server = await startTestServer({ config: { store } });
  try {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'durability wiring',
        strategy: 'sequential',
        agents: [
          { name: 'a', role: 'engineer', task: 'a', runner: 'ok' },
          { name: 'b', role: 'engineer', task: 'b', runner: 'ok' },
        ],
      },
    });
    assert.equal(created.status, 201);
    const done = await waitForSession<{ status: string }>(server.url, created.body.id);
    assert.equal(done.status, 'completed');
    const queue = (server.app.engine as EngineInternals).queue;
    await queue.drain();
    // Drained: every commit so far is on disk.
    assert.equal(queue.whenDurable(), undefined);
    return queue.stats();
  } finally {
    await server.close();
  }
}

test('synchronous full (default): engine progress is acknowledged before its flush', async () => {
  const stats = await runChain({ synchronous: 'full' });
  assert.ok(stats.deferredBatches > 0, 'engine batches did not wait for the disk');
  assert.ok(stats.walFlushes > 0, 'and were flushed in the background');
});

test('syncEngineCommits: every engine commit waits for its flush', async () => {
  const stats = await runChain({ synchronous: 'full', syncEngineCommits: true });
  assert.equal(stats.deferredBatches, 0);
  assert.ok(stats.walFlushes > 0, 'each commit was flushed before it was acknowledged');
});

test('synchronous normal: nothing is flushed by MAOS', async () => {
  const stats = await runChain({ synchronous: 'normal' });
  assert.deepEqual(
    { deferred: stats.deferredBatches, flushes: stats.walFlushes },
    { deferred: 0, flushes: 0 },
  );
});
