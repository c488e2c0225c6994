// redactErrorResponses on a real HTTP answer from a server on 127.0.0.1: how much of an error body
// is read and scanned for secrets.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createSecretRedactor } from '../../security/secret-redaction.ts';
import { MAX_ERROR_BODY_CHARS, redactErrorResponses } from './provider-error-redaction.ts';

test('an error body is scanned for secrets up to a bound, not whole (a huge one would hold the event loop)', async () => {
  const key = 'sk-test-0123456789abcdefghij';
  const huge = `invalid key ${key} ${'x'.repeat(4 * 1024 * 1024)}`;
  const server = createServer((_request, response) => {
    response.writeHead(400, { 'content-type': 'text/plain' });
    response.end(huge);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const redactor = createSecretRedactor([key]);
    const scanned: number[] = [];
    const redact = (text: string): string => {
      scanned.push(text.length);
      return redactor(text);
    };
    const { port } = server.address() as AddressInfo;
    const response = await redactErrorResponses(redact, fetch)(`http://127.0.0.1:${port}/v1/chat`);
    assert.equal(response.status, 400);
    const body = await response.text();
    assert.ok(body.startsWith('invalid key [REDACTED] xxx'), body.slice(0, 40));
    assert.ok(body.length <= MAX_ERROR_BODY_CHARS, `${body.length}`);
    assert.ok(Math.max(...scanned) <= MAX_ERROR_BODY_CHARS, `${Math.max(...scanned)}`);
  } finally {
    server.close();
  }
});
