// Tool calls with bad arguments or an unknown tool name get the same kind of answer as every other
// MAOS tool error — `isError`, a text starting with the code, the code in `structuredContent` —
// over /mcp and over stdio (`maos mcp`), never a bare SDK message without a code.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { connectHttpClient, type McpTestServer, startMcpTestServer } from '../fixtures/mcp-server.ts';

const MAOS_BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));

interface ToolErrorView {
  code: string;
  message: string;
  details?: Array<{ location: string; path: string; message: string }>;
}

async function callFailing(
  client: Client,
  name: string,
  args: Record<string, unknown>,
): Promise<ToolErrorView> {
  const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
  assert.equal(result.isError, true, JSON.stringify(result));
  const error = (result.structuredContent as { error?: ToolErrorView } | undefined)?.error;
  assert.ok(error, `a MAOS error in structuredContent: ${JSON.stringify(result)}`);
  const text = result.content[0]?.type === 'text' ? result.content[0].text : '';
  assert.ok(text.startsWith(`${error.code}: `), text);
  return error;
}

async function checkArgumentErrors(client: Client): Promise<void> {
  const badId = await callFailing(client, 'session_status', { session_id: 'nope' });
  assert.equal(badId.code, 'VALIDATION_FAILED');
  assert.equal(badId.message, 'Invalid arguments for tool session_status: session_id: must be a UUID');
  assert.deepEqual(badId.details, [
    { location: 'arguments', path: '/session_id', message: 'must be a UUID' },
  ]);

  const missing = await callFailing(client, 'cancel_session', {});
  assert.equal(missing.code, 'VALIDATION_FAILED');
  assert.equal(missing.details?.[0]?.path, '/session_id');

  const extra = await callFailing(client, 'list_roles', { verbose: true });
  assert.equal(extra.code, 'VALIDATION_FAILED');
  assert.match(extra.message, /Unrecognized key/);

  // Every problem is listed, not only the first.
  const several = await callFailing(client, 'orchestrate', { objective: 42, wait_seconds: -1 });
  assert.equal(several.code, 'VALIDATION_FAILED');
  assert.deepEqual(several.details?.map((issue) => issue.path).sort(), ['/objective', '/wait_seconds']);

  const unknown = await callFailing(client, 'no_such_tool', {});
  assert.equal(unknown.code, 'NOT_FOUND');
  assert.match(unknown.message, /Unknown tool "no_such_tool"/);

  // Valid arguments still reach the tool.
  const roles = (await client.callTool({ name: 'list_roles', arguments: {} })) as CallToolResult;
  assert.notEqual(roles.isError, true);
}

describe('MCP tool calls with bad arguments', { timeout: 60_000 }, () => {
  let server: McpTestServer;
  before(async () => {
    server = await startMcpTestServer();
  });
  after(async () => server?.close());

  test('over /mcp', async (t) => {
    const mcp = await connectHttpClient(server.url);
    t.after(() => mcp.close());
    await checkArgumentErrors(mcp.client);
  });

  test('over stdio (maos mcp --server)', async (t) => {
    const client = new Client({ name: 'maos-args-test', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [MAOS_BIN, 'mcp', '--server', server.url],
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
        stderr: 'pipe',
      }),
    );
    t.after(() => client.close());
    await checkArgumentErrors(client);
  });
});
