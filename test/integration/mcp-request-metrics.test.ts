// maos_mcp_requests_total counts every answered MCP request, including those refused before the
// SDK handles them: params of the wrong shape (-32602) and tool arguments that fail the tool's
// schema or name no tool. Real server, real MCP client, read from a /metrics scrape.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { connectHttpClient, startMcpTestServer } from '../fixtures/mcp-server.ts';
import { initializeMcp, initializeRequest, messagesOf, postMcp, readFrames } from '../fixtures/mcp-wire.ts';
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

test('requests refused for the caps on requests in flight are counted as such, not only as -32602 errors', async (t) => {
  const server = await startMcpTestServer({ config: { mcp: { maxRequestsInFlightPerSession: 1 } } });
  t.after(() => server.close());
  const { sessionId, negotiated } = await initializeMcp(server.url, '2025-03-26');
  const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': negotiated };
  // Each request of a batch takes a slot: of three, the first is served and two are refused.
  const batch = [1, 2, 3].map((id) => ({ jsonrpc: '2.0', id, method: 'tools/list' }));
  const answers = messagesOf(await readFrames(await postMcp(server.url, batch, headers), () => false));
  assert.equal(answers.filter((answer) => 'error' in answer).length, 2);

  // An operator tells them from malformed params (also -32602) by the limiter.
  assert.equal(await scrapeSample(server.url, 'maos_rate_limit_rejections_total{limiter="mcp_requests"}'), 2);
  assert.equal(await scrapeSample(server.url, mcp('tools/list', 'error')), 2);
  // A params error is no refusal for the cap.
  const refused = await postMcp(
    server.url,
    { jsonrpc: '2.0', id: 4, method: 'resources/read', params: { uri: 42 } },
    headers,
  );
  assert.equal(messagesOf(await readFrames(refused, () => false)).length, 1);
  assert.equal(await scrapeSample(server.url, mcp('resources/read', 'error')), 1);
  assert.equal(await scrapeSample(server.url, 'maos_rate_limit_rejections_total{limiter="mcp_requests"}'), 2);
});

test('MCP sessions refused for the session caps are counted as such, apart from the caps on requests', async (t) => {
  const server = await startMcpTestServer({
    config: { mcp: { maxSessions: 1, maxSessionsPerTenant: 1, maxSessionsPerPrincipal: 1 } },
  });
  t.after(() => server.close());
  const limiter = (name: string) => `maos_rate_limit_rejections_total{limiter="${name}"}`;
  await initializeMcp(server.url, '2025-03-26');
  for (const client of ['second', 'third']) {
    const refused = await postMcp(server.url, initializeRequest(client));
    assert.equal(refused.status, 429);
    assert.equal(((await refused.json()) as { code: string }).code, 'RESOURCE_LIMIT_EXCEEDED');
  }
  assert.equal(await scrapeSample(server.url, limiter('mcp_sessions')), 2);
  assert.equal(await scrapeSample(server.url, limiter('mcp_requests')), 0);
  assert.equal(await scrapeSample(server.url, 'maos_errors_total{code="RESOURCE_LIMIT_EXCEEDED"}'), 2);
});
