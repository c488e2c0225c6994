// Tool calls with bad arguments or an unknown tool name get the same kind of answer as every other
// MAOS tool error — `isError`, a text starting with the code, the details as JSON after it —
// over /mcp and over stdio (`maos mcp`), never a bare SDK message without a code. Requests whose
// params have the wrong shape are JSON-RPC -32602 with VALIDATION_FAILED, not -32603; so are
// requests whose `_meta` has the wrong shape (a progressToken null), answered with their id: they
// were -32600 "not a JSON-RPC 2.0 message" with id null, which a stdio client cannot match to its
// request, so it waited for an answer until its timeout.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { type CallToolResult, McpError } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import {
  connectHttpClient,
  connectRemoteStdioClient,
  type McpTestServer,
  startMcpTestServer,
  type ToolErrorView,
  toolErrorOf,
} from '../fixtures/mcp-server.ts';
import { initializeMcp, initializeRequest, postMcp } from '../fixtures/mcp-wire.ts';

type ArgumentErrorView = ToolErrorView & {
  details?: Array<{ location: string; path: string; message: string }>;
};

async function callFailing(
  client: Client,
  name: string,
  args: Record<string, unknown>,
): Promise<ArgumentErrorView> {
  const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
  assert.equal(result.isError, true, JSON.stringify(result));
  assert.equal(result.structuredContent, undefined, 'no structured content on a tool error');
  const error = toolErrorOf(result) as ArgumentErrorView | undefined;
  assert.ok(error, `a MAOS error in the text: ${JSON.stringify(result)}`);
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

/** Sends a request as given (the client does not check params) and returns the JSON-RPC error. */
async function requestFailing(
  client: Client,
  method: string,
  params: unknown,
  timeoutMs?: number,
): Promise<McpError> {
  try {
    const options = timeoutMs === undefined ? {} : { timeout: timeoutMs };
    await client.request({ method, params } as never, z.looseObject({}), options);
  } catch (error) {
    assert.ok(error instanceof McpError, String(error));
    return error;
  }
  return assert.fail(`${method} succeeded`);
}

async function checkMalformedParams(client: Client): Promise<void> {
  for (const [method, params, path] of [
    ['tools/call', { name: 'list_roles', arguments: 'all of them' }, '/arguments'],
    ['tools/call', { arguments: {} }, '/name'],
    ['resources/read', { uri: 5 }, '/uri'],
    ['resources/subscribe', {}, '/uri'],
  ] as const) {
    const error = await requestFailing(client, method, params);
    assert.equal(error.code, -32602, `${method}: ${error.message}`);
    assert.match(
      error.message,
      new RegExp(`VALIDATION_FAILED: Invalid params for ${method}: ${path.slice(1)}: `),
    );
    const data = error.data as { code: string; details: Array<{ path: string }> };
    assert.equal(data.code, 'VALIDATION_FAILED');
    assert.equal(data.details[0]?.path, path);
  }
  // The connection is still good.
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
    await checkMalformedParams(mcp.client);
  });

  test('over stdio (maos mcp --server)', async (t) => {
    const client = await connectRemoteStdioClient(server.url, 'maos-args-test');
    t.after(() => client.close());
    await checkArgumentErrors(client);
    await checkMalformedParams(client);
  });

  test('a request whose _meta is malformed is -32602 naming it, with its id, over /mcp and over stdio', async (t) => {
    const cases = [
      [{ name: 'list_roles', arguments: {}, _meta: { progressToken: null } }, '/_meta/progressToken'],
      [{ name: 'list_roles', arguments: {}, _meta: { progressToken: 1.5 } }, '/_meta/progressToken'],
      [{ _meta: 'trace me' }, '/_meta'],
    ] as const;
    const { sessionId, negotiated } = await initializeMcp(server.url, '2025-06-18');
    const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': negotiated };
    for (const [index, [params, path]] of cases.entries()) {
      const method = path === '/_meta' ? 'tools/list' : 'tools/call';
      const response = await postMcp(server.url, { jsonrpc: '2.0', id: 30 + index, method, params }, headers);
      assert.equal(response.status, 400);
      const answer = (await response.json()) as {
        id: unknown;
        error: { code: number; message: string; data: { code: string; details: Array<{ path: string }> } };
      };
      assert.equal(answer.id, 30 + index);
      assert.equal(answer.error.code, -32602, answer.error.message);
      assert.match(answer.error.message, new RegExp(`^VALIDATION_FAILED: Invalid params for ${method}: `));
      assert.equal(answer.error.data.code, 'VALIDATION_FAILED');
      assert.equal(answer.error.data.details[0]?.path, path);
    }

    const client = await connectRemoteStdioClient(server.url, 'maos-meta-test');
    t.after(() => client.close());
    for (const [params, path] of cases) {
      const method = path === '/_meta' ? 'tools/list' : 'tools/call';
      // Not the answer with id null, which the client cannot match: it waits until the timeout.
      const error = await requestFailing(client, method, params, 10_000);
      assert.equal(error.code, -32602, error.message);
      const data = error.data as { code: string; details: Array<{ path: string }> };
      assert.equal(data.code, 'VALIDATION_FAILED');
      assert.equal(data.details[0]?.path, path);
    }
    // The connection is still good.
    const roles = (await client.callTool({ name: 'list_roles', arguments: {} })) as CallToolResult;
    assert.notEqual(roles.isError, true);
  });

  test('a malformed initialize over /mcp is -32602 naming the problem, and opens no session', async () => {
    const initialize = initializeRequest('maos-args-test');
    const { clientInfo: _left, ...withoutClientInfo } = initialize.params;
    for (const [params, path] of [
      [withoutClientInfo, '/clientInfo'],
      [{ ...initialize.params, protocolVersion: 5 }, '/protocolVersion'],
    ] as const) {
      const response = await postMcp(server.url, { ...initialize, id: 7, params });
      assert.equal(response.status, 400);
      assert.equal(response.headers.get('mcp-session-id'), null);
      const answer = (await response.json()) as {
        id: unknown;
        error: { code: number; message: string; data: { code: string; details: Array<{ path: string }> } };
      };
      assert.equal(answer.id, 7);
      assert.equal(answer.error.code, -32602, answer.error.message);
      assert.match(
        answer.error.message,
        new RegExp(`VALIDATION_FAILED: Invalid params for initialize: ${path.slice(1)}: `),
      );
      assert.equal(answer.error.data.code, 'VALIDATION_FAILED');
      assert.equal(answer.error.data.details[0]?.path, path);
    }
    // A well-formed one still opens a session.
    const opened = await postMcp(server.url, initialize);
    assert.equal(opened.status, 200);
    assert.ok(opened.headers.get('mcp-session-id'));
    await opened.body?.cancel();
  });
});
