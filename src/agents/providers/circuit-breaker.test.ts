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
    assert.equal(breaker.tryAcquire(), true);
    breaker.recordFailure();
    assert.equal(breaker.state(), 'open');
    assert.equal(breaker.tryAcquire(), false);
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
    assert.equal(breaker.tryAcquire(), true);
    assert.equal(breaker.tryAcquire(), false, 'only one trial at a time');
    breaker.recordFailure();
    assert.equal(breaker.state(), 'open');
    advance(999);
    assert.equal(breaker.tryAcquire(), false);
    advance(1);
    assert.equal(breaker.tryAcquire(), true);
    breaker.recordSuccess();
    assert.equal(breaker.state(), 'closed');
    assert.equal(breaker.tryAcquire(), true);
  });

  test('releasing a trial lets the next caller try', () => {
    const { breaker, advance } = makeBreaker();
    for (let i = 0; i < 3; i += 1) breaker.recordFailure();
    advance(1000);
    assert.equal(breaker.tryAcquire(), true);
    breaker.releaseTrial();
    assert.equal(breaker.tryAcquire(), true);
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
