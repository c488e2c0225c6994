import assert from 'node:assert/strict';
import { test } from 'node:test';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { AppError } from '../errors/app-error.ts';
import { parseResourceUri } from './resources.ts';
import { RESOURCE_NOT_FOUND, toProtocolError, toToolError, toToolResult } from './tool-result.ts';

test('a tool error carries the stable code and the details in its text, no structured content', () => {
  const result = toToolError(
    new AppError('INVALID_ROLE', 'Unknown role astronaut', { details: ['agents.0.role'] }),
  );
  assert.equal(result.isError, true);
  // Every tool declares an output schema; clients check any structured content against it.
  assert.equal(result.structuredContent, undefined);
  assert.deepEqual(result.content, [
    { type: 'text', text: 'INVALID_ROLE: Unknown role astronaut\n["agents.0.role"]' },
  ]);
});

test('an unexpected error becomes INTERNAL without leaking its message', () => {
  const result = toToolError(new Error('database password is hunter2'));
  assert.match((result.content[0] as { text: string }).text, /^INTERNAL: /);
  assert.doesNotMatch(JSON.stringify(result), /hunter2/);
});

test('protocol errors map 404 codes to resource-not-found and keep the code in data', () => {
  const notFound = toProtocolError(new AppError('SESSION_NOT_FOUND', 'Session x not found'));
  assert.ok(notFound instanceof McpError);
  assert.equal(notFound.code, RESOURCE_NOT_FOUND);
  assert.deepEqual(notFound.data, { code: 'SESSION_NOT_FOUND' });
  assert.equal(notFound.message, 'SESSION_NOT_FOUND: Session x not found');
  assert.equal(toProtocolError(new AppError('PERMISSION_DENIED', 'no')).code, -32602);
  assert.equal(toProtocolError(new Error('boom')).code, -32603);
});

test('a successful result is JSON text plus the same structured content', () => {
  const result = toToolResult({ sessionId: 'a', status: 'running' });
  assert.deepEqual(result.structuredContent, { sessionId: 'a', status: 'running' });
  assert.deepEqual(JSON.parse((result.content[0] as { text: string }).text), {
    sessionId: 'a',
    status: 'running',
  });
});

test('resource URIs parse into their targets; anything else is NOT_FOUND', () => {
  assert.deepEqual(parseResourceUri('maos://roles'), { kind: 'roles' });
  assert.deepEqual(parseResourceUri('maos://sessions/abc'), { kind: 'session', sessionId: 'abc' });
  assert.deepEqual(parseResourceUri('maos://sessions/abc/agents/build%23a/output'), {
    kind: 'output',
    sessionId: 'abc',
    agent: 'build#a',
  });
  for (const uri of [
    'maos://sessions/',
    'maos://sessions/a/b',
    'file:///etc/passwd',
    'maos://sessions/%E0%A4%A/x',
  ]) {
    assert.throws(
      () => parseResourceUri(uri),
      (error: unknown) => error instanceof AppError && error.code === 'NOT_FOUND',
      uri,
    );
  }
});
