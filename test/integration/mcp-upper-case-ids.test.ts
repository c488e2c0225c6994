// A session id sent in upper case to the MCP tools and resources names the same session, as over
// REST (UUIDs are case-insensitive; the server writes them in lower case), and the tools' published
// input schemas stay as they were. Real SDK clients over /mcp and in memory (the steering tools).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import {
  type ConnectedClient,
  connectHttpClient,
  connectSteeringClient,
  type McpTestServer,
  startMcpTestServer,
  toolErrorOf,
} from '../fixtures/mcp-server.ts';
import { markPlanOrchestrated } from '../fixtures/orchestrated-plan.ts';

interface StatusView {
  sessionId: string;
  status: string;
  retryOf: string | null;
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

async function callOk(client: Client, name: string, args: Record<string, unknown>): Promise<StatusView> {
  const result = await call(client, name, args);
  assert.notEqual(result.isError, true, `${name}: ${JSON.stringify(result.content)}`);
  return result.structuredContent as unknown as StatusView;
}

async function start(client: Client): Promise<string> {
  const started = await callOk(client, 'orchestrate', {
    objective: 'case',
    agents: [{ name: 's', role: 'tester', task: 'sleep', runner: 'sleep' }],
  });
  assert.notEqual(started.sessionId.toUpperCase(), started.sessionId);
  return started.sessionId;
}

describe('MCP: a session id in upper case names the same session', { timeout: 60_000 }, () => {
  let server: McpTestServer;
  let connected: ConnectedClient;
  before(async () => {
    server = await startMcpTestServer();
    connected = await connectHttpClient(server.url);
  });
  after(async () => {
    await connected?.close();
    await server?.close();
  });

  test('session tools and resources over /mcp; the published input schema is unchanged', async () => {
    const { client } = connected;
    const { tools } = await client.listTools();
    for (const name of ['session_status', 'cancel_session', 'retry_session']) {
      const property = tools.find((tool) => tool.name === name)?.inputSchema.properties?.session_id;
      assert.deepEqual(
        property,
        {
          type: 'string',
          pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
          description: 'Session id (UUID), as returned by `orchestrate`.',
        },
        name,
      );
    }
    const id = await start(client);
    const upper = id.toUpperCase();

    const shown = await callOk(client, 'session_status', { session_id: upper });
    assert.equal(shown.sessionId, id, 'answered with the id as the server wrote it');

    const uri = `maos://sessions/${upper}`;
    const read = await client.readResource({ uri });
    assert.equal(read.contents[0]?.uri, uri, 'the resource as it was asked for');
    assert.equal(
      (JSON.parse(String((read.contents[0] as { text?: string } | undefined)?.text)) as StatusView).sessionId,
      id,
    );
    await client.subscribeResource({ uri });
    await client.unsubscribeResource({ uri });

    const cancelled = await callOk(client, 'cancel_session', { session_id: upper });
    assert.deepEqual([cancelled.sessionId, cancelled.status], [id, 'cancelled']);
    // A refused call is audited against the session as the server wrote its id.
    const refused = await call(client, 'cancel_session', { session_id: upper, reason: 'extra' });
    assert.equal(toolErrorOf(refused)?.code, 'VALIDATION_FAILED');
    const targets = (await server.listAudit())
      .filter((r) => r.reason === 'mcp tool cancel_session: VALIDATION_FAILED')
      .map((r) => r.targetId);
    assert.deepEqual(targets, [id]);
    const retried = await callOk(client, 'retry_session', { session_id: upper });
    assert.equal(retried.retryOf, id);
    await callOk(client, 'cancel_session', { session_id: retried.sessionId });
  });

  test('the steering tools', async (t) => {
    const client = await connectSteeringClient(
      server.app,
      { tenantId: 'default', principalId: 'case-test' },
      'case-test',
    );
    t.after(() => client.close());
    const id = await start(client);
    const upper = id.toUpperCase();
    await markPlanOrchestrated(server.app.database.db, id);
    const sent = await call(client, 'send_message', { session_id: upper, message: 'prefer PostgreSQL' });
    assert.notEqual(sent.isError, true, JSON.stringify(sent.content));
    assert.equal((sent.structuredContent as { sessionId: string }).sessionId, id);
    // Found, but not awaiting approval: INVALID_STATE, not SESSION_NOT_FOUND.
    for (const [name, args] of [
      ['approve_plan', { session_id: upper }],
      ['reject_plan', { session_id: upper, reason: 'no' }],
    ] as const) {
      const refused = await call(client, name, args);
      assert.equal(
        toolErrorOf(refused)?.code,
        'INVALID_STATE',
        `${name}: ${JSON.stringify(refused.content)}`,
      );
    }
    await callOk(client, 'cancel_session', { session_id: upper });
  });
});
