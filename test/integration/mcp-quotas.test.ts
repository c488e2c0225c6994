// Tenant quotas hold on every way in: MCP `orchestrate` is refused past the cap on unfinished
// sessions exactly like POST /v1/sessions, with the same stable code.
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

describe('tenant quotas through MCP', () => {
  let server: McpTestServer;
  let key: string;

  before(async () => {
    server = await startMcpTestServer({
      secure: true,
      config: { rateLimit: { enabled: false, maxConcurrentSessionsPerTenant: 1 } },
    });
    key = await server.createKey('acme', ['developer']);
  });

  after(() => server.close());

  test('orchestrate past the cap is a QUOTA_EXCEEDED tool error, and REST agrees', async () => {
    const mcp = await connectHttpClient(server.url, { authorization: `Bearer ${key}` });
    try {
      const input = { objective: 'long work', agents: [{ role: 'qa', task: 'wait', runner: 'sleep' }] };
      const first = (await mcp.client.callTool({ name: 'orchestrate', arguments: input })) as CallToolResult;
      assert.notEqual(first.isError, true, JSON.stringify(first.content));
      const second = (await mcp.client.callTool({ name: 'orchestrate', arguments: input })) as CallToolResult;
      assert.equal(second.isError, true);
      assert.equal(toolErrorOf(second)?.code, 'QUOTA_EXCEEDED');
      const rest = await requestJson<{ code: string }>(`${server.url}/v1/sessions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}` },
        body: input,
      });
      assert.equal(rest.status, 429);
      assert.equal(rest.body.code, 'QUOTA_EXCEEDED');
    } finally {
      await mcp.close();
    }
  });
});
