import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError, coerceError, ERROR_CODES, isErrorCode, toAppError } from './app-error.ts';

describe('AppError', () => {
  test('every code has a 4xx/5xx status and a title', () => {
    for (const [code, spec] of Object.entries(ERROR_CODES)) {
      assert.match(code, /^[A-Z][A-Z_]+$/);
      assert.ok(spec.status >= 400 && spec.status < 600, code);
      assert.ok(spec.title.length > 0, code);
    }
  });

  test('status and category come from the code', () => {
    const error = new AppError('SESSION_NOT_FOUND', 'no such session', { details: { id: 'x' } });
    assert.equal(error.status, 404);
    assert.equal(error.category, 'user');
    assert.deepEqual(error.details, { id: 'x' });
  });

  test('Retry-After: the wait the thrower names, else its code’s for a code that always asks for a retry', () => {
    assert.equal(new AppError('RATE_LIMITED', 'slow down').retryAfterSeconds, 1);
    assert.equal(new AppError('SHUTTING_DOWN', 'bye').retryAfterSeconds, 1);
    assert.equal(new AppError('RATE_LIMITED', 'slow down', { retryAfterSeconds: 42 }).retryAfterSeconds, 42);
    assert.equal(new AppError('QUOTA_EXCEEDED', 'q', { retryAfterSeconds: 60 }).retryAfterSeconds, 60);
    assert.equal(new AppError('STORE_UNAVAILABLE', 'down').retryAfterSeconds, undefined);
    assert.equal(new AppError('NOT_FOUND', 'gone').retryAfterSeconds, undefined);
  });

  test('toAppError keeps AppErrors and hides other messages', () => {
    const original = new AppError('CONFLICT', 'c');
    assert.equal(toAppError(original), original);
    const wrapped = toAppError(new Error('secret internals'));
    assert.equal(wrapped.code, 'INTERNAL');
    assert.ok(!wrapped.message.includes('secret'));
  });

  test('coerceError turns anything into an Error', () => {
    assert.equal(coerceError('x').message, 'x');
    assert.equal(coerceError({ a: 1 }).message, '{"a":1}');
    assert.ok(isErrorCode('INTERNAL'));
    assert.ok(!isErrorCode('NOPE'));
  });
});
