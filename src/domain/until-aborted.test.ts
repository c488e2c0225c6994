import assert from 'node:assert/strict';
import { test } from 'node:test';
import { untilAborted } from './until-aborted.ts';

test('the work outcome when the signal stays quiet, the signal reason once it aborts first', async () => {
  assert.equal(await untilAborted(Promise.resolve(7), new AbortController().signal), 7);
  await assert.rejects(
    untilAborted(Promise.reject(new Error('failed')), new AbortController().signal),
    /failed/,
  );
  assert.equal(await untilAborted(Promise.resolve(3), undefined), 3);

  const controller = new AbortController();
  let finish: (value: number) => void = () => {};
  const waiting = untilAborted(new Promise<number>((resolve) => (finish = resolve)), controller.signal);
  controller.abort(new Error('stopped'));
  await assert.rejects(waiting, /stopped/);
  finish(1);
});

test('a signal aborted already rejects at once, and a later failure of the work is no unhandled rejection', async () => {
  const controller = new AbortController();
  controller.abort(new Error('gone'));
  let fail: (error: Error) => void = () => {};
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const work = new Promise<number>((_resolve, reject) => (fail = reject));
    await assert.rejects(untilAborted(work, controller.signal), /gone/);
    fail(new Error('late'));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
