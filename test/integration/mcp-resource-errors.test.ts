// Resource errors are the same for reads and subscriptions, and as docs/mcp.md states: a URI that
// names nothing (unknown scheme path, unknown agent) is -32002 with the MAOS code in `data.code`.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import {
  type ConnectedClient,
  connectHttpClient,
  type McpTestServer,
  startMcpTestServer,
} from '../fixtures/mcp-server.ts';

/** JSON-RPC error code MCP reserves for "resource not found". */
const RESOURCE_NOT_FOUND = -32002;

/** Asserts that `request` fails with -32002 and MAOS code NOT_FOUND. */
async function assertResourceNotFound(request: Promise<unknown>): Promise<void> {
  await assert.rejects(request, (error: Error & { code?: number; data?: { code?: string } }) => {
    assert.equal(error.code, RESOURCE_NOT_FOUND, error.message);
    assert.equal(error.data?.code, 'NOT_FOUND');
    return true;
  });
}

describe('MCP resource errors', { timeout: 60_000 }, () => {
  let server: McpTestServer;
  let mcp: ConnectedClient;
  let sessionId: string;

  before(async () => {
    server = await startMcpTestServer();
    mcp = await connectHttpClient(server.url);
    const started = (await mcp.client.callTool({
      name: 'orchestrate',
      arguments: {
        objective: 'one agent',
        agents: [{ name: 'only', role: 'tester', task: 'x', runner: 'ok' }],
      },
    })) as CallToolResult;
    sessionId = (started.structuredContent as { sessionId: string }).sessionId;
  });
  after(async () => {
    await mcp?.close();
    await server?.close();
  });

  test('subscribing to the output of an agent the session does not have is NOT_FOUND, like reading it', async () => {
    const uri = `maos://sessions/${sessionId}/agents/NO_SUCH_AGENT/output`;
    await assertResourceNotFound(mcp.client.readResource({ uri }));
    await assertResourceNotFound(mcp.client.subscribeResource({ uri }));
    // The session's real agent can still be subscribed to.
    await mcp.client.subscribeResource({ uri: `maos://sessions/${sessionId}/agents/only/output` });
  });

  for (const uri of ['maos://other', 'maos://sessions/', 'https://example.com/x']) {
    test(`reading and subscribing to ${uri} is NOT_FOUND`, async () => {
      await assertResourceNotFound(mcp.client.readResource({ uri }));
      await assertResourceNotFound(mcp.client.subscribeResource({ uri }));
    });
  }
});
