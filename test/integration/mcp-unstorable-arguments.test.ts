// MCP tool arguments holding U+0000 or an unpaired surrogate are refused as REST refuses such a
// body: a tool error VALIDATION_FAILED naming the argument, and no session is started. So are
// arguments with a key `__proto__` (or `constructor` holding `prototype`), which the JSON parser of
// /mcp refuses: over stdio (`maos mcp`) they were parsed without that check, and a `__proto__` key
// of `metadata` was dropped, the session stored without it and no error said so.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import {
  connectHttpClient,
  connectRemoteStdioClient,
  type McpTestServer,
  startMcpTestServer,
  toolErrorOf,
} from '../fixtures/mcp-server.ts';
import { requestJson } from '../fixtures/server.ts';

describe('MCP tool arguments the store could not keep', { timeout: 60_000 }, () => {
  let server: McpTestServer;
  before(async () => {
    server = await startMcpTestServer();
  });
  after(async () => server?.close());

  test('are a VALIDATION_FAILED tool error naming the argument', async (t) => {
    const mcp = await connectHttpClient(server.url);
    t.after(() => mcp.close());
    for (const [objective, message] of [
      ['a\u0000b', 'must not contain the character U+0000 (NUL)'],
      ['a\uD800b', 'must be well-formed Unicode (it holds an unpaired surrogate)'],
    ] as const) {
      const result = (await mcp.client.callTool({
        name: 'orchestrate',
        arguments: { objective, agents: [{ role: 'qa', task: 'x', runner: 'ok' }] },
      })) as CallToolResult;
      assert.equal(result.isError, true, JSON.stringify(result));
      const error = toolErrorOf(result) as { code: string; message: string; details?: unknown };
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.equal(error.message, `Invalid arguments for tool orchestrate: objective: ${message}`);
      assert.deepEqual(error.details, [{ location: 'arguments', path: '/objective', message }]);
    }
    const sessions = await requestJson<{ items: unknown[] }>(`${server.url}/v1/sessions`);
    assert.deepEqual(sessions.body.items, []);
  });
});

test('arguments with a __proto__ or constructor.prototype key are refused over stdio, not stored without it', async (t) => {
  const server = await startMcpTestServer();
  t.after(() => server.close());
  const client = await connectRemoteStdioClient(server.url, 'maos-proto-test');
  t.after(() => client.close());
  const session = '"objective":"x","agents":[{"role":"qa","task":"x","runner":"ok"}]';
  for (const [text, path, key] of [
    [`{${session},"metadata":{"__proto__":{"admin":true},"kept":1}}`, '/metadata', '__proto__'],
    [
      `{${session},"metadata":{"team":[{"constructor":{"prototype":{"admin":true}}}]}}`,
      '/metadata/team/0',
      'constructor',
    ],
    // The arguments object itself: the SDK's schema of tools/call dropped the key before the check.
    [`{"__proto__":{"admin":true},${session}}`, '/', '__proto__'],
  ] as const) {
    // As a client's JSON parser reads it: `__proto__` an own key, as it is on the wire.
    const args = JSON.parse(text) as Record<string, unknown>;
    const result = (await client.callTool({ name: 'orchestrate', arguments: args })) as CallToolResult;
    assert.equal(result.isError, true, JSON.stringify(result));
    const error = toolErrorOf(result) as {
      code: string;
      message: string;
      details?: Array<{ location: string; path: string; message: string }>;
    };
    assert.equal(error.code, 'VALIDATION_FAILED');
    assert.match(
      error.message,
      new RegExp(
        `^Invalid arguments for tool orchestrate: ${path === '/' ? '' : `${path.slice(1)}: `}has a key "${key}"`,
      ),
    );
    assert.equal(error.details?.[0]?.path, path);
  }
  const sessions = await requestJson<{ items: unknown[] }>(`${server.url}/v1/sessions`);
  assert.deepEqual(sessions.body.items, []);
});
