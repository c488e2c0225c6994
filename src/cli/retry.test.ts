// The CLI's retry policy: backoff and time bound of an outage (on a fake clock), which failures are
// retried, and the final error when it gives up.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CliError, EXIT } from './exit-codes.ts';
import { createOutage, parseRetryFor, retryWhileUnavailable } from './retry.ts';

const unavailable = () => new CliError('HTTP_503', 'no replica ready', EXIT.SERVER, [], { retryable: true });

describe('createOutage', () => {
  test('backs off 250 ms, doubling to 5 s, and gives up once the bound has passed', () => {
    let now = 0;
    const outage = createOutage(30_000, () => now);
    const delays: number[] = [];
    for (;;) {
      const delay = outage.fail();
      if (delay === undefined) break;
      delays.push(delay);
      now += delay;
    }
    assert.deepEqual(delays.slice(0, 7), [250, 500, 1000, 2000, 4000, 5000, 5000]);
    // The last wait is cut to what is left of the bound: the attempts end at 30 s, not later.
    assert.equal(
      delays.reduce((sum, d) => sum + d, 0),
      30_000,
    );
    assert.equal(outage.elapsedMs(), 30_000);
  });

  test('a success ends the outage: backoff and clock start again', () => {
    let now = 0;
    const outage = createOutage(1_000, () => now);
    outage.fail();
    now += 900;
    outage.fail();
    outage.recover();
    now += 900;
    assert.equal(outage.fail(), 250);
    assert.equal(outage.failures, 1);
  });

  test('a wait the server asked for is kept when it fits the bound, else it gives up', () => {
    let now = 0;
    const outage = createOutage(10_000, () => now);
    assert.equal(outage.fail(3_000), 3_000);
    now += 3_000;
    assert.equal(outage.fail(60_000), undefined);
  });

  test('a bound of 0 gives up at the first failure', () => {
    assert.equal(createOutage(0).fail(), undefined);
  });
});

describe('retryWhileUnavailable', () => {
  test('retries transient failures, then returns the answer', async () => {
    let calls = 0;
    const retries: number[] = [];
    const value = await retryWhileUnavailable(
      async () => {
        calls += 1;
        if (calls < 3) throw unavailable();
        return 'ok';
      },
      { onRetry: (attempt) => retries.push(attempt) },
    );
    assert.equal(value, 'ok');
    assert.deepEqual(retries, [1, 2]);
  });

  test('an error that will not go away is thrown at once', async () => {
    let calls = 0;
    const notFound = new CliError('SESSION_NOT_FOUND', 'Session not found', EXIT.NOT_FOUND);
    await assert.rejects(
      retryWhileUnavailable(async () => {
        calls += 1;
        throw notFound;
      }),
      notFound,
    );
    assert.equal(calls, 1);
  });

  test('canRetry can refuse a transient failure', async () => {
    let calls = 0;
    await assert.rejects(
      retryWhileUnavailable(
        async () => {
          calls += 1;
          throw unavailable();
        },
        { canRetry: () => false },
      ),
      /no replica ready/,
    );
    assert.equal(calls, 1);
  });

  test('giving up keeps the code and exit code and says how long it tried', async () => {
    await assert.rejects(
      retryWhileUnavailable(
        async () => {
          throw unavailable();
        },
        { retryForMs: 300 },
      ),
      (error: unknown) =>
        error instanceof CliError &&
        error.code === 'HTTP_503' &&
        error.exitCode === EXIT.SERVER &&
        /no replica ready; gave up after \d+ attempts over \d+ s$/.test(error.message),
    );
  });

  test('an aborted signal stops the waiting with INTERRUPTED', async () => {
    const controller = new AbortController();
    await assert.rejects(
      retryWhileUnavailable(
        async () => {
          throw unavailable();
        },
        { signal: controller.signal, onRetry: () => controller.abort() },
      ),
      (error: unknown) => error instanceof CliError && error.exitCode === EXIT.INTERRUPTED,
    );
  });
});

test('parseRetryFor reads seconds and refuses anything else', () => {
  assert.equal(parseRetryFor(undefined), 90_000);
  assert.equal(parseRetryFor('0'), 0);
  assert.equal(parseRetryFor('2.5'), 2_500);
  for (const bad of ['', 'soon', '-1', 'Infinity', '100000']) {
    assert.throws(
      () => parseRetryFor(bad),
      (error: unknown) => error instanceof CliError && error.exitCode === EXIT.USAGE,
    );
  }
});
