// maos_mcp_requests_total counts every answered MCP request, including those refused before the
// SDK handles them: params of the wrong shape (-32602) and tool arguments that fail the tool's
// schema or name no tool. Real server, real MCP client, read from a /metrics scrape.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { connectHttpClient } from '../fixtures/mcp-server.ts';
import { scrapeSample } from '../fixtures/metrics-scrape.ts';
import { startTestServer } from '../fixtures/server.ts';

const mcp = (method: string, outcome: string) =>
  `maos_mcp_requests_total{mcp_method_name="${method}",outcome="${outcome}"}`;

test('requests refused for malformed params or bad tool arguments count as errors', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  const client = await connectHttpClient(server.url);
  t.after(() => client.close());

  // Params of the wrong shape: answered -32602 by the params check, before the protocol layer.
  for (const [method, params] of [
    ['tools/call', { name: 'list_roles', arguments: 'all of them' }],
    ['resources/read', { uri: 42 }],
  ] as const) {
    await assert.rejects(
      client.client.request({ method, params } as never, z.looseObject({})),
      (error) => error instanceof McpError && error.code === -32602,
    );
  }
  assert.equal(await scrapeSample(server.url, mcp('tools/call', 'error')), 1);
  assert.equal(await scrapeSample(server.url, mcp('resources/read', 'error')), 1);

  // Tool arguments the tool's schema refuses, and an unknown tool: tool errors.
  const badId = await client.client.callTool({ name: 'session_status', arguments: { session_id: 'nope' } });
  assert.equal(badId.isError, true);
  const unknown = await client.client.callTool({ name: 'no_such_tool', arguments: {} });
  assert.equal(unknown.isError, true);
  assert.equal(await scrapeSample(server.url, mcp('tools/call', 'error')), 3);
  assert.equal(await scrapeSample(server.url, mcp('tools/call', 'success')), 0);

  // A well-formed call is still counted once, as a success.
  await client.client.callTool({ name: 'list_roles', arguments: {} });
  assert.equal(await scrapeSample(server.url, mcp('tools/call', 'success')), 1);
  assert.equal(await scrapeSample(server.url, mcp('tools/call', 'error')), 3);
});
