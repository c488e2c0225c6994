// MCP over Streamable HTTP against the real server (store, engine, command runners), driven by
// the official SDK Client: discovery, orchestrate → status → output, errors with stable codes,
// subscriptions, progress, session termination and DNS-rebinding checks.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  type CallToolResult,
  LATEST_PROTOCOL_VERSION,
  ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import {
  type ConnectedClient,
  connectHttpClient,
  type McpTestServer,
  startMcpTestServer,
  toolErrorOf,
} from '../fixtures/mcp-server.ts';
import { initializeMcp, initializeRequest, postMcp } from '../fixtures/mcp-wire.ts';

interface StatusView {
  sessionId: string;
  status: string;
  done: boolean;
  result: string | null;
  progress: { total: number; finished: number };
  tasks: Array<{ name: string; status: string; outputUri: string }>;
  recentEvents?: Array<{ seq: number; type: string }>;
}

async function callTool(
  client: Client,
  name: string,
  args: Record<string, unknown>,
): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

function structured<T>(result: CallToolResult): T {
  assert.notEqual(result.isError, true, `tool failed: ${JSON.stringify(result.content)}`);
  return result.structuredContent as T;
}

function errorCode(result: CallToolResult): string | undefined {
  assert.equal(
    result.isError,
    true,
    `expected a tool error, got ${JSON.stringify(result.structuredContent)}`,
  );
  return toolErrorOf(result)?.code;
}

async function pollUntilDone(client: Client, sessionId: string): Promise<StatusView> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const view = structured<StatusView>(await callTool(client, 'session_status', { session_id: sessionId }));
    if (view.done) return view;
    if (Date.now() > deadline) throw new Error(`session ${sessionId} still ${view.status}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function postInitialize(url: string, headers: Record<string, string>): Promise<Response> {
  return postMcp(url, initializeRequest('raw'), headers, AbortSignal.timeout(10_000));
}

/** fetch() may not set Host; node:http can, as a browser under DNS rebinding effectively does. */
function postWithHost(url: string, host: string): Promise<number> {
  const target = new URL('/mcp', url);
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: {
      protocolVersion: LATEST_PROTOCOL_VERSION,
      capabilities: {},
      clientInfo: { name: 'raw', version: '1' },
    },
  });
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      target,
      {
        method: 'POST',
        headers: {
          host,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'content-length': Buffer.byteLength(body),
        },
        timeout: 10_000,
      },
      (response) => {
        resolve(response.statusCode ?? 0);
        response.destroy();
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

describe('MCP over Streamable HTTP', { timeout: 120_000 }, () => {
  let server: McpTestServer;
  let mcp: ConnectedClient;

  before(async () => {
    server = await startMcpTestServer();
    mcp = await connectHttpClient(server.url);
  });
  after(async () => {
    await mcp?.close();
    await server?.close();
  });

  test('initialize negotiates the protocol and advertises tools and subscribable resources', () => {
    assert.equal(mcp.client.getServerVersion()?.name, 'maos');
    const capabilities = mcp.client.getServerCapabilities();
    assert.ok(capabilities?.tools);
    assert.equal(capabilities?.resources?.subscribe, true);
    // No list_changed notification is ever sent: neither list may claim one.
    assert.equal(capabilities?.tools?.listChanged, false);
    assert.equal(capabilities?.resources?.listChanged, false);
    assert.equal(mcp.transport.protocolVersion, LATEST_PROTOCOL_VERSION);
    assert.ok(mcp.transport.sessionId, 'the server assigned an Mcp-Session-Id');
    assert.match(mcp.client.getInstructions() ?? '', /orchestrate/);
  });

  test('lists the tools with descriptions and JSON schemas', async () => {
    const { tools } = await mcp.client.listTools();
    const names = tools.map((tool) => tool.name).sort();
    for (const name of ['cancel_session', 'list_roles', 'orchestrate', 'session_status']) {
      assert.ok(names.includes(name), `tool ${name} listed`);
    }
    for (const tool of tools) {
      assert.ok((tool.description ?? '').length > 40, `${tool.name} has a useful description`);
      assert.equal(tool.inputSchema.type, 'object');
    }
    const orchestrate = tools.find((tool) => tool.name === 'orchestrate');
    assert.deepEqual(orchestrate?.inputSchema.required, ['objective']);
    assert.ok(orchestrate?.inputSchema.properties?.agents, 'agents documented');
  });

  test('lists resources and resource templates', async () => {
    const { resources } = await mcp.client.listResources();
    assert.ok(resources.some((resource) => resource.uri === 'maos://roles'));
    const { resourceTemplates } = await mcp.client.listResourceTemplates();
    const templates = resourceTemplates.map((template) => template.uriTemplate).sort();
    assert.deepEqual(templates, ['maos://sessions/{id}', 'maos://sessions/{id}/agents/{agent}/output']);
    const roles = await mcp.client.readResource({ uri: 'maos://roles' });
    const text = roles.contents[0] && 'text' in roles.contents[0] ? roles.contents[0].text : '';
    assert.ok(
      (JSON.parse(text) as { roles: Array<{ name: string }> }).roles.some((r) => r.name === 'tester'),
    );
  });

  test('list_roles returns the catalogue', async () => {
    const { roles } = structured<{ roles: Array<{ name: string; capabilities: string[] }> }>(
      await callTool(mcp.client, 'list_roles', {}),
    );
    assert.ok(roles.length >= 10);
    assert.ok(roles.some((role) => role.name === 'reviewer' && role.capabilities.length > 0));
  });

  test('orchestrate runs a 2-task session to completion; status and agent output are readable', async () => {
    const started = structured<StatusView & { created: boolean }>(
      await callTool(mcp.client, 'orchestrate', {
        objective: 'check the build',
        strategy: 'pipeline',
        agents: [
          { name: 'build', role: 'tester', task: 'print the task', runner: 'echo' },
          { name: 'review', role: 'reviewer', task: 'wait briefly', runner: 'slow', depends_on: ['build'] },
        ],
      }),
    );
    assert.equal(started.created, true);
    assert.match(started.sessionId, /^[0-9a-f-]{36}$/);
    assert.equal(started.progress.total, 2);

    const done = await pollUntilDone(mcp.client, started.sessionId);
    assert.equal(done.status, 'completed');
    assert.equal(done.progress.finished, 2);
    assert.deepEqual(
      done.tasks.map((task) => [task.name, task.status]),
      [
        ['build', 'succeeded'],
        ['review', 'succeeded'],
      ],
    );

    const build = done.tasks.find((task) => task.name === 'build');
    assert.equal(build?.outputUri, `maos://sessions/${started.sessionId}/agents/build/output`);
    const output = await mcp.client.readResource({ uri: build.outputUri });
    const first = output.contents[0];
    assert.equal(first?.mimeType, 'text/plain');
    assert.match(first && 'text' in first ? first.text : '', /task=print the task/);

    const resource = await mcp.client.readResource({ uri: `maos://sessions/${started.sessionId}` });
    const body = resource.contents[0] && 'text' in resource.contents[0] ? resource.contents[0].text : '';
    assert.equal((JSON.parse(body) as StatusView).status, 'completed');

    const withEvents = structured<StatusView>(
      await callTool(mcp.client, 'session_status', { session_id: started.sessionId, recent_events: 3 }),
    );
    assert.equal(withEvents.recentEvents?.length, 3);
    assert.equal(withEvents.recentEvents?.at(-1)?.type, 'session.finished');
  });

  test('orchestrate with a progressToken reports progress and waits for the result', async () => {
    const progress: number[] = [];
    const result = (await mcp.client.callTool(
      {
        name: 'orchestrate',
        arguments: {
          objective: 'two quick steps',
          agents: [
            { name: 'a', role: 'tester', task: 'one', runner: 'slow' },
            { name: 'b', role: 'tester', task: 'two', runner: 'slow' },
          ],
        },
      },
      undefined,
      { onprogress: (p) => progress.push(p.progress), resetTimeoutOnProgress: true },
    )) as CallToolResult;
    const view = structured<StatusView>(result);
    assert.equal(view.status, 'completed');
    assert.ok(progress.length >= 1, 'at least one progress notification');
    assert.equal(progress.at(-1), 2);
    for (let i = 1; i < progress.length; i += 1) assert.ok((progress[i] ?? 0) > (progress[i - 1] ?? 0));
  });

  test('subscribing to a session notifies when it changes', async () => {
    const started = structured<StatusView>(
      await callTool(mcp.client, 'orchestrate', {
        objective: 'watch me',
        agents: [{ name: 'w', role: 'tester', task: 'wait', runner: 'slow' }],
      }),
    );
    const uri = `maos://sessions/${started.sessionId}`;
    const updated = new Promise<string>((resolve) => {
      mcp.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (notification) => {
        if (notification.params.uri === uri) resolve(notification.params.uri);
      });
    });
    await mcp.client.subscribeResource({ uri });
    assert.equal(await updated, uri);
    await mcp.client.unsubscribeResource({ uri });
    await pollUntilDone(mcp.client, started.sessionId);
  });

  test('an unknown session is a SESSION_NOT_FOUND tool error (and resource error)', async () => {
    const id = randomUUID();
    assert.equal(
      errorCode(await callTool(mcp.client, 'session_status', { session_id: id })),
      'SESSION_NOT_FOUND',
    );
    assert.equal(
      errorCode(await callTool(mcp.client, 'cancel_session', { session_id: id })),
      'SESSION_NOT_FOUND',
    );
    await assert.rejects(
      mcp.client.readResource({ uri: `maos://sessions/${id}` }),
      (error: Error & { data?: unknown }) => {
        assert.deepEqual(error.data, { code: 'SESSION_NOT_FOUND' });
        return true;
      },
    );
  });

  test('an unknown role is an INVALID_ROLE tool error', async () => {
    const result = await callTool(mcp.client, 'orchestrate', {
      objective: 'x',
      agents: [{ role: 'astronaut', task: 'fly', runner: 'ok' }],
    });
    assert.equal(errorCode(result), 'INVALID_ROLE');
    // It names the tool that lists the roles, not only a REST route an MCP host cannot call.
    assert.match(toolErrorOf(result)?.message ?? '', /list_roles/);
  });

  test('invalid arguments and unknown tools are tool errors naming the problem', async () => {
    const invalid = await callTool(mcp.client, 'session_status', { session: 'x' });
    assert.equal(invalid.isError, true);
    assert.match(JSON.stringify(invalid.content), /session_id/);
    const notUuid = await callTool(mcp.client, 'session_status', { session_id: '../../etc' });
    assert.equal(notUuid.isError, true);
    assert.match(JSON.stringify(notUuid.content), /must be a UUID/);
    const unknown = await callTool(mcp.client, 'no_such_tool', {});
    assert.equal(unknown.isError, true);
    assert.match(JSON.stringify(unknown.content), /no_such_tool/);
  });

  test('cancel_session ends a running session cancelled', async () => {
    const started = structured<StatusView>(
      await callTool(mcp.client, 'orchestrate', {
        objective: 'long',
        agents: [{ name: 's', role: 'tester', task: 'sleep', runner: 'sleep' }],
      }),
    );
    const cancelled = structured<StatusView>(
      await callTool(mcp.client, 'cancel_session', { session_id: started.sessionId }),
    );
    assert.equal(cancelled.status, 'cancelled');
  });

  test('DELETE ends the MCP session; its id is then unknown', async () => {
    const other = await connectHttpClient(server.url);
    const sessionId = other.transport.sessionId;
    assert.ok(sessionId);
    await other.transport.terminateSession();
    await other.close();
    const response = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': sessionId,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    assert.equal(response.status, 404);
    await response.body?.cancel();
  });

  test('a request without a session id that is not initialize is rejected', async () => {
    const response = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    assert.equal(response.status, 400);
    assert.equal(((await response.json()) as { code: string }).code, 'VALIDATION_FAILED');
  });

  test('an empty JSON-RPC batch is an Invalid Request, not accepted', async () => {
    const { sessionId, negotiated } = await initializeMcp(server.url, '2025-03-26');
    const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': negotiated };
    const response = await postMcp(server.url, [], headers);
    assert.equal(response.status, 400);
    const answer = (await response.json()) as { id: unknown; error: { code: number } };
    assert.equal(answer.id, null);
    assert.equal(answer.error.code, -32600);
    // A batch with a message is still served.
    const served = await postMcp(server.url, [{ jsonrpc: '2.0', id: 3, method: 'ping' }], headers);
    assert.equal(served.status, 200);
    await served.body?.cancel();
  });

  test('JSON that is no JSON-RPC message is an Invalid Request (-32600), as over stdio, not a Parse error', async () => {
    const { sessionId, negotiated } = await initializeMcp(server.url, '2025-03-26');
    const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': negotiated };
    for (const body of [
      'text',
      [1],
      { jsonrpc: '2.0', id: { a: 1 }, method: 'tools/list' },
      { jsonrpc: '1.0', id: 4, method: 'tools/list' },
      [{ jsonrpc: '2.0', id: 5, method: 'ping' }, { id: 6 }],
    ]) {
      const response = await postMcp(server.url, body, headers);
      assert.equal(response.status, 400, JSON.stringify(body));
      const answer = (await response.json()) as { id: unknown; error: { code: number } };
      assert.equal(answer.id, null);
      // Before: -32700 Parse error, which JSON-RPC keeps for text that is not JSON.
      assert.equal(answer.error.code, -32600, JSON.stringify(body));
    }
    // Text that is not JSON at all is refused as on every route, before the MCP layer.
    const text = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...headers,
      },
      body: '{"jsonrpc": "2.0", "id": 8,',
    });
    assert.equal(text.status, 400);
    assert.match(text.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.equal(((await text.json()) as { code: string }).code, 'VALIDATION_FAILED');
    const served = await postMcp(server.url, { jsonrpc: '2.0', id: 7, method: 'ping' }, headers);
    assert.equal(served.status, 200);
    await served.body?.cancel();
  });

  test('a foreign Origin or Host is rejected (DNS-rebinding protection)', async () => {
    const foreignOrigin = await postInitialize(server.url, { origin: 'https://evil.example' });
    assert.equal(foreignOrigin.status, 403);
    assert.equal(((await foreignOrigin.json()) as { code: string }).code, 'PERMISSION_DENIED');
    const port = new URL(server.url).port;
    assert.equal(await postWithHost(server.url, `attacker.example:${port}`), 403);
    assert.equal(await postWithHost(server.url, `localhost:${port}`), 200);
    const loopbackOrigin = await postInitialize(server.url, { origin: `http://localhost:${port}` });
    assert.equal(loopbackOrigin.status, 200);
    assert.ok(loopbackOrigin.headers.get('mcp-session-id'));
    await loopbackOrigin.body?.cancel();
  });
});

test('a wait on a long task sends progress now and then, so a client resetting its timeout on progress keeps waiting', async (t) => {
  // Keep-alives every second (http.sseKeepAliveSeconds, 15 s by default) against a 3 s timeout.
  const server = await startMcpTestServer({ config: { http: { sseKeepAliveSeconds: 1 } } });
  t.after(() => server.close());
  const connected = await connectHttpClient(server.url);
  t.after(() => connected.close());
  const progress: number[] = [];
  const result = (await connected.client.callTool(
    {
      name: 'orchestrate',
      arguments: {
        objective: 'one task longer than the client timeout',
        agents: [{ name: 'long', role: 'tester', task: 'sleep', runner: 'sleep' }],
        wait_seconds: 6,
      },
    },
    undefined,
    { timeout: 3_000, resetTimeoutOnProgress: true, onprogress: (p) => progress.push(p.progress) },
  )) as CallToolResult;
  const view = structured<StatusView>(result);
  assert.equal(view.done, false, 'the wait ended, the task still runs');
  assert.ok(progress.length >= 3, `progress: ${progress.join(', ')}`);
  assert.equal(progress[0], 0);
  for (let i = 1; i < progress.length; i += 1) {
    assert.ok((progress[i] ?? 0) > (progress[i - 1] ?? 0), `progress rises: ${progress.join(', ')}`);
    assert.ok((progress[i] ?? 1) < 1, 'below the next finished task');
  }
  await connected.client.callTool({ name: 'cancel_session', arguments: { session_id: view.sessionId } });
});
