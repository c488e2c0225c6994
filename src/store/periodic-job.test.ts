// Unit tests for the periodic job timer shared by the retention job and the workspace sweeper.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from '../../test/fixtures/wait-for.ts';
import { startPeriodicJob } from './periodic-job.ts';

test('runs every interval, one at a time; runOnce joins the run in progress', async (t) => {
  let active = 0;
  let overlapped = false;
  let release: (() => void) | undefined;
  const results: number[] = [];
  let runs = 0;
  const job = startPeriodicJob({
    run: async () => {
      active++;
      overlapped ||= active > 1;
      const n = ++runs;
      // The first run waits to be released: the timer must not start another meanwhile.
      if (n === 1) await new Promise<void>((resolve) => (release = resolve));
      active--;
      return n;
    },
    intervalMs: 5,
    onResult: (n) => results.push(n),
    onError: (error) => assert.fail(String(error)),
  });
  t.after(() => job.stop());
  await waitFor(() => release !== undefined, 10_000, 'the first run');
  assert.equal(job.runOnce(), job.runOnce());
  await sleep(50);
  assert.equal(runs, 1);
  release?.();
  await waitFor(() => results.length >= 3, 10_000, 'three runs');
  assert.equal(overlapped, false);
  assert.deepEqual(results.slice(0, 3), [1, 2, 3]);
});

test('a failed run is reported and the next interval runs again', async (t) => {
  let runs = 0;
  const errors: string[] = [];
  const results: string[] = [];
  const job = startPeriodicJob({
    run: async () => {
      runs++;
      if (runs === 1) throw new Error('database down');
      return 'ok';
    },
    intervalMs: 5,
    onResult: (result) => results.push(result),
    onError: (error) => errors.push((error as Error).message),
  });
  t.after(() => job.stop());
  await waitFor(() => results.length > 0, 10_000, 'a run after the failure');
  assert.deepEqual(errors, ['database down']);
});

test('stop tells the running run to stop, waits for it, and no run follows', async () => {
  let runs = 0;
  let started: (() => void) | undefined;
  const running = new Promise<void>((resolve) => (started = resolve));
  let sawStop = false;
  const job = startPeriodicJob({
    run: async (shouldStop) => {
      runs++;
      started?.();
      await waitFor(shouldStop, 10_000, 'stop');
      sawStop = true;
      throw new Error('stopped half-way');
    },
    intervalMs: 5,
    onResult: () => undefined,
    onError: () => undefined,
  });
  await running;
  await job.stop();
  assert.equal(sawStop, true);
  await sleep(50);
  assert.equal(runs, 1);
});

test('the timer does not keep the process alive', () => {
  const module = new URL('./periodic-job.ts', import.meta.url).href;
  const script = `import { startPeriodicJob } from ${JSON.stringify(module)};
startPeriodicJob({ run: async () => 0, intervalMs: 3_600_000, onResult() {}, onError() {} });`;
  // An hour's timer that held the process would run into the timeout (and fail the test).
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000 });
  assert.equal(child.error, undefined);
  assert.equal(child.status, 0, child.stderr.toString());
});
