import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AUTH_FAILURE_REASONS } from '../observability/metric-labels.ts';
import { classifyAuthFailure, readJsonRpcCall } from './http-security-plugin.ts';

describe('auth failure metric labels', () => {
  test('every classification is on the metrics allow-list', () => {
    const cases: [string | null, string, string][] = [
      [null, 'authentication required', 'missing_credentials'],
      ['invalid_token', 'unknown API key', 'invalid_api_key'],
      ['invalid_token', 'API key revoked', 'invalid_api_key'],
      ['invalid_token', 'token expired', 'expired_token'],
      ['invalid_token', 'token audience is not this API', 'wrong_audience'],
      ['invalid_token', 'token signature is invalid', 'invalid_token'],
      ['invalid_request', 'malformed Authorization header', '_OTHER'],
    ];
    for (const [error, reason, label] of cases) {
      assert.equal(classifyAuthFailure(error, reason), label);
      assert.ok((AUTH_FAILURE_REASONS as readonly string[]).includes(label), label);
    }
  });
});

describe('MCP request classification for the audit log', () => {
  test('tool calls are named by method and tool; other bodies are not JSON-RPC', () => {
    assert.deepEqual(
      readJsonRpcCall({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'orchestrate' } }),
      {
        method: 'tools/call',
        tool: 'orchestrate',
      },
    );
    assert.deepEqual(readJsonRpcCall({ jsonrpc: '2.0', method: 'tools/list' }), {
      method: 'tools/list',
      tool: null,
    });
    for (const body of [undefined, null, 'x', [], { method: 'tools/call' }, { jsonrpc: '2.0', method: 5 }]) {
      assert.equal(readJsonRpcCall(body), null);
    }
  });
});
