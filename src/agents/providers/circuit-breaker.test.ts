// Unit tests for the per-provider circuit breaker (fake clock).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createCircuitBreaker, createCircuitBreakerSet } from './circuit-breaker.ts';

function makeBreaker() {
  let time = 0;
  const breaker = createCircuitBreaker({ failureThreshold: 3, openMs: 1000, now: () => time });
  return {
    breaker,
    advance: (ms: number) => {
      time += ms;
    },
  };
}

describe('circuit breaker', () => {
  test('opens after the threshold of consecutive failures', () => {
    const { breaker } = makeBreaker();
    breaker.recordFailure();
    breaker.recordFailure();
    assert.equal(breaker.state(), 'closed');
    assert.deepEqual(breaker.tryAcquire(), { trial: false });
    breaker.recordFailure();
    assert.equal(breaker.state(), 'open');
    assert.equal(breaker.tryAcquire(), undefined);
  });

  test('a success resets the failure count', () => {
    const { breaker } = makeBreaker();
    breaker.recordFailure();
    breaker.recordFailure();
    breaker.recordSuccess();
    breaker.recordFailure();
    breaker.recordFailure();
    assert.equal(breaker.state(), 'closed');
  });

  test('half-open admits one trial; success closes, failure reopens', () => {
    const { breaker, advance } = makeBreaker();
    for (let i = 0; i < 3; i += 1) breaker.recordFailure();
    advance(1000);
    assert.equal(breaker.state(), 'half_open');
    const trial = breaker.tryAcquire();
    assert.equal(trial?.trial, true);
    assert.equal(breaker.tryAcquire(), undefined, 'only one trial at a time');
    breaker.recordFailure(trial);
    assert.equal(breaker.state(), 'open');
    advance(999);
    assert.equal(breaker.tryAcquire(), undefined);
    advance(1);
    const next = breaker.tryAcquire();
    assert.equal(next?.trial, true);
    breaker.recordSuccess(next);
    assert.equal(breaker.state(), 'closed');
    assert.equal(breaker.tryAcquire()?.trial, false);
  });

  test('releasing a trial lets the next caller try', () => {
    const { breaker, advance } = makeBreaker();
    for (let i = 0; i < 3; i += 1) breaker.recordFailure();
    advance(1000);
    const trial = breaker.tryAcquire();
    assert.ok(trial);
    breaker.releaseTrial(trial);
    assert.equal(breaker.tryAcquire()?.trial, true);
  });

  test('a call admitted before the circuit opened does not free the trial slot when it ends', () => {
    const { breaker, advance } = makeBreaker();
    // A long call (a streaming agent) admitted while closed, still running when the circuit opens.
    const early = breaker.tryAcquire();
    const late = breaker.tryAcquire();
    assert.ok(early && late);
    for (let i = 0; i < 3; i += 1) breaker.recordFailure();
    advance(1000);
    const trial = breaker.tryAcquire();
    assert.equal(trial?.trial, true);
    // The early call is cancelled (no verdict): the trial is still in flight, so no second one.
    breaker.releaseTrial(early);
    assert.equal(breaker.tryAcquire(), undefined, 'still one trial at a time');
    // The late one fails: the circuit reopens, and after the pause the trial still runs alone.
    breaker.recordFailure(late);
    assert.equal(breaker.state(), 'open');
    advance(1000);
    assert.equal(breaker.tryAcquire(), undefined, 'the trial in flight still holds the slot');
    breaker.recordSuccess(trial);
    assert.equal(breaker.state(), 'closed');
  });

  test('the set keeps one breaker per provider', () => {
    const breakerFor = createCircuitBreakerSet({ failureThreshold: 1, openMs: 1000 });
    breakerFor('a').recordFailure();
    assert.equal(breakerFor('a').state(), 'open');
    assert.equal(breakerFor('b').state(), 'closed');
  });

  test('reports state changes once each', () => {
    let time = 0;
    const states: string[] = [];
    const breaker = createCircuitBreaker({
      failureThreshold: 2,
      openMs: 100,
      now: () => time,
      onStateChange: (state) => states.push(state),
    });
    breaker.recordFailure();
    breaker.recordFailure();
    breaker.tryAcquire();
    time = 100;
    breaker.tryAcquire();
    breaker.recordSuccess();
    assert.deepEqual(states, ['open', 'half_open', 'closed']);
  });
});
