// How failures of fetch map to CLI errors: which ones a follower may retry, and the wording of
// those it must not (an unknown host, a request fetch refused to build). A port fetch refuses
// for every request never gets here: normaliseBaseUrl (client.ts) refuses it before any request.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toConnectionError, UnreachableError } from './client-errors.ts';
import { EXIT } from './exit-codes.ts';

const base = new URL('http://maos.example.test:7070/');

/** A fetch failure as undici reports it: TypeError('fetch failed') with the socket error as cause. */
function fetchFailed(code: string): TypeError {
  return new TypeError('fetch failed', { cause: Object.assign(new Error(`connect ${code}`), { code }) });
}

test('a refused connection is retryable and known to have sent nothing', () => {
  const error = toConnectionError(fetchFailed('ECONNREFUSED'), base);
  assert.ok(error instanceof UnreachableError);
  assert.equal(error.refused, true);
  assert.equal(error.retryable, true);
  assert.equal(error.exitCode, EXIT.UNREACHABLE);
});

test('a reset connection is retryable but may have reached the server', () => {
  const error = toConnectionError(fetchFailed('ECONNRESET'), base);
  assert.ok(error instanceof UnreachableError);
  assert.equal(error.refused, false);
  assert.equal(error.retryable, true);
});

test('an unknown host name fails at once, naming the host', () => {
  const error = toConnectionError(fetchFailed('ENOTFOUND'), base);
  assert.equal(error.retryable, false);
  assert.equal(error.exitCode, EXIT.UNREACHABLE);
  assert.match(error.message, /no such host maos\.example\.test/);
});

test('a request fetch refused to build is a usage error, not an unreachable server', () => {
  const error = toConnectionError(new TypeError('Headers.append: "a\nb" is an invalid header value.'), base);
  assert.equal(error.exitCode, EXIT.USAGE);
  assert.equal(error.retryable, false);
});
