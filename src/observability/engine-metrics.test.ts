// The engine observer records task and session events; queue gauges read getQueueCounts at scrape time.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { QueueCounts } from '../engine/engine-observer.ts';
import { connectQueueCounts, createEngineMetricsObserver } from './engine-metrics.ts';
import { createMetrics } from './metrics.ts';

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('engine metrics', () => {
  test('the observer records claims, finishes, retries, lease expiries and sessions', async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    const observer = createEngineMetricsObserver(metrics, { slots: 4 });
    const task = { role: 'engineer', runtime: 'llm' };
    observer.sessionStarted?.();
    observer.taskClaimed?.({ ...task, queueWaitMs: 250 });
    observer.taskClaimed?.({ ...task, queueWaitMs: 50 });
    let text = await metrics.render();
    assert.equal(sample(text, 'maos_worker_slots{state="busy"}'), 2);
    assert.equal(sample(text, 'maos_worker_slots{state="idle"}'), 2);
    observer.taskFinished?.({ ...task, status: 'succeeded', durationMs: 1500 });
    observer.taskFinished?.({ ...task, status: 'ready', durationMs: 100 });
    observer.leaseExpired?.();
    observer.taskRetried?.();
    observer.sessionFinished?.('completed');
    observer.sessionFinished?.('running');
    text = await metrics.render();
    assert.equal(sample(text, 'maos_worker_slots{state="busy"}'), 0);
    assert.equal(sample(text, 'maos_sessions_started_total'), 1);
    assert.equal(sample(text, 'maos_sessions_finished_total{outcome="completed"}'), 1);
    assert.doesNotMatch(text, /outcome="running"/);
    const wait = 'maos_task_queue_wait_seconds';
    assert.equal(sample(text, `${wait}_count{runtime="llm",role="engineer"}`), 2);
    assert.equal(sample(text, `${wait}_sum{runtime="llm",role="engineer"}`), 0.3);
    const duration = 'maos_task_duration_seconds_count';
    assert.equal(sample(text, `${duration}{runtime="llm",role="engineer",outcome="succeeded"}`), 1);
    assert.equal(sample(text, `${duration}{runtime="llm",role="engineer",outcome="retried"}`), 1);
    assert.equal(sample(text, 'maos_task_lease_expiries_total'), 1);
    assert.equal(sample(text, 'maos_task_retries_total'), 1);
  });

  test('busy slots stay within [0, slots] even when hooks are missed', async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    const observer = createEngineMetricsObserver(metrics, { slots: 1 });
    const task = { role: 'qa', runtime: 'command' };
    observer.taskFinished?.({ ...task, status: 'failed', durationMs: 1 });
    assert.equal(sample(await metrics.render(), 'maos_worker_slots{state="busy"}'), 0);
    observer.taskClaimed?.({ ...task, queueWaitMs: 1 });
    observer.taskClaimed?.({ ...task, queueWaitMs: 1 });
    assert.equal(sample(await metrics.render(), 'maos_worker_slots{state="busy"}'), 1);
  });

  test('queue depth and sessions by status come from one getQueueCounts call per scrape', async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    let calls = 0;
    connectQueueCounts(metrics, async (): Promise<QueueCounts> => {
      calls += 1;
      return { tasks: { ready: 5, leased: 2, running: 1 }, sessions: { running: 3, failed: 1 } };
    });
    const text = await metrics.render();
    assert.equal(calls, 1);
    assert.equal(sample(text, 'maos_tasks{status="ready"}'), 5);
    assert.equal(sample(text, 'maos_tasks{status="leased"}'), 2);
    assert.equal(sample(text, 'maos_tasks{status="running"}'), 1);
    assert.equal(sample(text, 'maos_sessions{status="running"}'), 3);
    assert.equal(sample(text, 'maos_sessions{status="completed"}'), 0);
    assert.equal(sample(text, 'maos_tasks{status="pending"}'), undefined, 'not counted, so no series');
  });

  test('a failed count query is not reused by the next scrape', async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    let calls = 0;
    connectQueueCounts(metrics, async (): Promise<QueueCounts> => {
      calls += 1;
      if (calls === 1) throw new Error('database is locked');
      return { tasks: { ready: 1, leased: 0, running: 0 }, sessions: {} };
    });
    assert.equal(sample(await metrics.render(), 'maos_tasks{status="ready"}'), undefined);
    assert.equal(sample(await metrics.render(), 'maos_tasks{status="ready"}'), 1);
  });
});
