// Unit tests for retry delays and the retry loop (no real waiting: sleep is recorded).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { APICallError } from 'ai';
import { callWithRetry, computeRetryDelay, type RetryPolicy } from './retry.ts';

const policy: RetryPolicy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 1000, maxRetryAfterMs: 10_000 };

function httpError(statusCode: number, headers: Record<string, string> = {}): APICallError {
  return new APICallError({
    message: `HTTP ${statusCode}`,
    url: 'http://x',
    requestBodyValues: {},
    statusCode,
    responseHeaders: headers,
  });
}

function recorder() {
  const delays: number[] = [];
  return { delays, sleep: async (ms: number) => void delays.push(ms) };
}

describe('computeRetryDelay', () => {
  test('doubles per attempt within [half, full] of the exponential value, capped', () => {
    assert.equal(
      computeRetryDelay(policy, 1, undefined, () => 0),
      50,
    );
    assert.equal(
      computeRetryDelay(policy, 1, undefined, () => 1),
      100,
    );
    assert.equal(
      computeRetryDelay(policy, 3, undefined, () => 1),
      400,
    );
    assert.equal(
      computeRetryDelay(policy, 10, undefined, () => 1),
      1000,
    );
    assert.equal(
      computeRetryDelay(policy, 10, undefined, () => 0),
      500,
    );
  });

  test('uses the Retry-After delay when given', () => {
    assert.equal(
      computeRetryDelay(policy, 1, 7000, () => 0.5),
      7000,
    );
  });
});

describe('callWithRetry', () => {
  test('retries 429 honouring Retry-After, then succeeds', async () => {
    const { delays, sleep } = recorder();
    let calls = 0;
    const outcome = await callWithRetry(
      policy,
      new AbortController().signal,
      async () => {
        calls += 1;
        if (calls === 1) throw httpError(429, { 'retry-after': '3' });
        return 'ok';
      },
      { sleep },
    );
    assert.deepEqual(outcome, { ok: true, value: 'ok', attempts: 2 });
    assert.deepEqual(delays, [3000]);
  });

  test('does not retry 400 or 401', async () => {
    for (const status of [400, 401, 403, 404]) {
      const { delays, sleep } = recorder();
      const outcome = await callWithRetry(
        policy,
        new AbortController().signal,
        async () => {
          throw httpError(status);
        },
        { sleep },
      );
      assert.equal(outcome.ok, false);
      assert.equal(outcome.attempts, 1, `status ${status}`);
      assert.deepEqual(delays, []);
    }
  });

  test('stops after maxAttempts on 5xx', async () => {
    const { delays, sleep } = recorder();
    let calls = 0;
    const outcome = await callWithRetry(
      policy,
      new AbortController().signal,
      async () => {
        calls += 1;
        throw httpError(503);
      },
      { sleep, random: () => 1 },
    );
    assert.equal(outcome.ok, false);
    assert.equal(calls, 4);
    assert.deepEqual(delays, [100, 200, 400]);
  });

  test('gives up at once when Retry-After exceeds the cap', async () => {
    const { delays, sleep } = recorder();
    const outcome = await callWithRetry(
      policy,
      new AbortController().signal,
      async () => {
        throw httpError(429, { 'retry-after': '3600' });
      },
      { sleep },
    );
    assert.equal(outcome.ok, false);
    assert.equal(outcome.attempts, 1);
    assert.equal(!outcome.ok && outcome.retryAfterTooLong, true, 'the wait is what ended the retries');
    assert.deepEqual(delays, []);
  });

  test('a Retry-After over the cap on the last attempt is not named as what ended the retries', async () => {
    const outcome = await callWithRetry(
      { ...policy, maxAttempts: 1 },
      new AbortController().signal,
      async () => {
        throw httpError(429, { 'retry-after': '3600' });
      },
      recorder(),
    );
    assert.equal(!outcome.ok && outcome.retryAfterTooLong, false);
  });

  test('rethrows when the caller aborted, without retrying', async () => {
    const controller = new AbortController();
    let calls = 0;
    await assert.rejects(
      callWithRetry(policy, controller.signal, async () => {
        calls += 1;
        controller.abort(new Error('cancelled'));
        throw httpError(503);
      }),
      /cancelled/,
    );
    assert.equal(calls, 1);
  });

  test('retries connection errors', async () => {
    const { sleep } = recorder();
    let calls = 0;
    const outcome = await callWithRetry(
      policy,
      new AbortController().signal,
      async () => {
        calls += 1;
        if (calls < 3) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
        return 1;
      },
      { sleep },
    );
    assert.equal(outcome.ok, true);
    assert.equal(calls, 3);
  });
});
