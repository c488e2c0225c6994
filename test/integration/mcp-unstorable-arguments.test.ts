// MCP tool arguments holding U+0000 or an unpaired surrogate are refused as REST refuses such a
// body: a tool error VALIDATION_FAILED naming the argument, and no session is started.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import {
  connectHttpClient,
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
