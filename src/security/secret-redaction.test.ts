// The redaction of secrets echoed in text from elsewhere (an LLM provider's error message): whole
// secrets and long runs of them go, the short excerpts providers print to name a key stay.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createSecretRedactor, MIN_REDACTED_RUN } from './secret-redaction.ts';

const KEY = 'sk-live-4f9a1c7e2b8d0a6f3e5c';

test('a whole secret, a long prefix, suffix or middle part of it is redacted', () => {
  const redact = createSecretRedactor([KEY]);
  assert.equal(redact(`invalid key ${KEY}.`), 'invalid key [REDACTED].');
  assert.equal(redact(`invalid key ${KEY.slice(0, 16)}…`), 'invalid key [REDACTED]…');
  assert.equal(redact(`key …${KEY.slice(-12)} revoked`), 'key …[REDACTED] revoked');
  assert.equal(redact(`part ${KEY.slice(5, 5 + MIN_REDACTED_RUN)} here`), 'part [REDACTED] here');
  assert.equal(redact(`${KEY} and ${KEY}`), '[REDACTED] and [REDACTED]');
});

test('the short excerpts that name a key stay readable', () => {
  const redact = createSecretRedactor([KEY]);
  const named = `Incorrect API key provided: ${KEY.slice(0, 4)}****${KEY.slice(-4)}`;
  assert.equal(redact(named), named);
  const shortRun = KEY.slice(3, 3 + MIN_REDACTED_RUN - 1);
  assert.equal(redact(`near ${shortRun} miss`), `near ${shortRun} miss`);
});

test('several secrets in one pass; short ones whole only; very short ones not at all', () => {
  const other = 'gateway-token-0a1b2c3d4e';
  const redact = createSecretRedactor([KEY, other, 'pw12', 'k']);
  assert.equal(
    redact(`key ${KEY} token ${other} pass pw12 ok`),
    'key [REDACTED] token [REDACTED] pass [REDACTED] ok',
  );
  assert.equal(redact('keep the k'), 'keep the k');
});

test('a secret is found as a JSON string holds it', () => {
  const quoted = 'abc"def\\ghi-0123456789';
  const redact = createSecretRedactor([quoted]);
  assert.equal(redact(JSON.stringify({ message: `bad ${quoted}` })), '{"message":"bad [REDACTED]"}');
});

test('no secrets: the text is returned as it is', () => {
  assert.equal(createSecretRedactor([])('invalid key sk-abc'), 'invalid key sk-abc');
});

test('a secret is found URL-encoded (a query value) and with its slashes JSON-escaped', () => {
  // A base64 key whose '+', '/' and '=' leave no run of 8 plain characters once encoded.
  const key = 'Ab3+dE6/gH9=jK2+mN5/pQ8=';
  const redact = createSecretRedactor([key]);
  assert.equal(redact(`GET /v1?key=${encodeURIComponent(key)} denied`), 'GET /v1?key=[REDACTED] denied');
  assert.equal(redact(`{"key":"${key.replaceAll('/', '\\/')}"}`), '{"key":"[REDACTED]"}');
});
