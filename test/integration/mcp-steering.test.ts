// approve_plan, reject_plan and send_message over MCP, backed by the engine's approval and
// steering operations on the real store (createEngineSteering, the same functions the REST routes call).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
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
  UNUSED_PROVIDER_CONFIG,
} from '../fixtures/mcp-server.ts';
import { markPlanOrchestrated } from '../fixtures/orchestrated-plan.ts';

const ACTOR = { tenantId: 'default', principalId: 'steering-test' };

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

function codeOf(result: CallToolResult): string | undefined {
  assert.equal(result.isError, true, JSON.stringify(result.content));
  return toolErrorOf(result)?.code;
}

describe('MCP steering tools', { timeout: 60_000 }, () => {
  let server: McpTestServer;
  let client: Client;

  before(async () => {
    server = await startMcpTestServer();
    client = await connectSteeringClient(server.app, ACTOR, 'steering-test');
  });
  after(async () => {
    await client?.close();
    await server?.close();
  });

  test('the steering tools are listed with schemas', async () => {
    const { tools } = await client.listTools();
    for (const name of ['approve_plan', 'reject_plan', 'send_message']) {
      const tool = tools.find((t) => t.name === name);
      assert.ok(tool, `${name} listed`);
      assert.ok(tool.inputSchema.required?.includes('session_id'));
    }
  });

  test('send_message stores a message for a running session', async () => {
    const started = await call(client, 'orchestrate', {
      objective: 'steer me',
      agents: [{ name: 's', role: 'tester', task: 'sleep', runner: 'sleep' }],
    });
    const sessionId = (started.structuredContent as { sessionId: string }).sessionId;
    // Its agents were given: no orchestrator would read a message.
    assert.equal(
      codeOf(await call(client, 'send_message', { session_id: sessionId, message: 'prefer PostgreSQL' })),
      'INVALID_STATE',
    );
    await markPlanOrchestrated(server.app.database.db, sessionId);
    const sent = await call(client, 'send_message', { session_id: sessionId, message: 'prefer PostgreSQL' });
    assert.notEqual(sent.isError, true, JSON.stringify(sent.content));
    const messageId = (sent.structuredContent as { messageId: string }).messageId;
    const row = await server.app.database.db
      .selectFrom('messages')
      .select(['body', 'session_id'])
      .where('id', '=', messageId)
      .executeTakeFirst();
    assert.deepEqual(row, { body: 'prefer PostgreSQL', session_id: sessionId });

    // A session that is not awaiting approval cannot be approved or rejected.
    assert.equal(codeOf(await call(client, 'approve_plan', { session_id: sessionId })), 'INVALID_STATE');
    assert.equal(
      codeOf(await call(client, 'reject_plan', { session_id: sessionId, reason: 'no' })),
      'INVALID_STATE',
    );

    await call(client, 'cancel_session', { session_id: sessionId });
    assert.equal(
      codeOf(await call(client, 'send_message', { session_id: sessionId, message: 'late' })),
      'INVALID_STATE',
    );
  });

  test('unknown sessions are SESSION_NOT_FOUND', async () => {
    const id = randomUUID();
    assert.equal(
      codeOf(await call(client, 'send_message', { session_id: id, message: 'hi' })),
      'SESSION_NOT_FOUND',
    );
    assert.equal(codeOf(await call(client, 'approve_plan', { session_id: id })), 'SESSION_NOT_FOUND');
  });
});

/** Every `description` in a tool's definition, its input schema's nested ones included. */
function descriptionsOf(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) for (const item of value) descriptionsOf(item, found);
  else if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      if (key === 'description' && typeof child === 'string') found.push(child);
      else descriptionsOf(child, found);
    }
  }
  return found;
}

describe('with an LLM provider configured, the application over /mcp', { timeout: 60_000 }, () => {
  let server: McpTestServer;
  let connected: ConnectedClient;
  before(async () => {
    server = await startMcpTestServer({ config: UNUSED_PROVIDER_CONFIG });
    connected = await connectHttpClient(server.url);
  });
  after(async () => {
    await connected?.close();
    await server?.close();
  });

  test('offers the steering tools', async () => {
    const { tools } = await connected.client.listTools();
    for (const name of ['approve_plan', 'reject_plan', 'send_message']) {
      assert.ok(
        tools.some((tool) => tool.name === name),
        `${name} offered`,
      );
    }
    const started = await call(connected.client, 'orchestrate', {
      objective: 'steer over http',
      agents: [{ name: 's', role: 'tester', task: 'sleep', runner: 'sleep' }],
    });
    const sessionId = (started.structuredContent as { sessionId: string }).sessionId;
    await markPlanOrchestrated(server.app.database.db, sessionId);
    const sent = await call(connected.client, 'send_message', { session_id: sessionId, message: 'hurry up' });
    assert.notEqual(sent.isError, true, JSON.stringify(sent.content));
    await call(connected.client, 'cancel_session', { session_id: sessionId });
  });

  test('orchestrate that waits returns once the plan awaits approval, not when the wait runs out', async () => {
    // Nothing happens to a session awaiting approval until the caller approves or rejects it: a
    // wait for its end would hold the call for the whole hour (and the client times out first).
    const progress: number[] = [];
    const started = (await connected.client.callTool(
      {
        name: 'orchestrate',
        arguments: {
          objective: 'review my plan first',
          approval: 'required',
          agents: [{ name: 'only', role: 'tester', task: 'run', runner: 'ok' }],
          wait_seconds: 3600,
        },
      },
      undefined,
      { timeout: 20_000, onprogress: (notification) => progress.push(notification.progress) },
    )) as CallToolResult;
    assert.notEqual(started.isError, true, JSON.stringify(started.content));
    const view = started.structuredContent as { sessionId: string; status: string; done: boolean };
    assert.equal(view.status, 'awaiting_approval');
    assert.equal(view.done, false);
    assert.deepEqual(progress, [0]);
    const approved = await call(connected.client, 'approve_plan', { session_id: view.sessionId });
    assert.notEqual(approved.isError, true, JSON.stringify(approved.content));
  });

  test('plan_version decides only that plan; each call is audited under the action of its REST write', async () => {
    const before = (await server.app.security.auditLog.list({ limit: 1000 })).items.length;
    const awaiting = async () => {
      const started = await call(connected.client, 'orchestrate', {
        objective: 'decide on the plan read',
        approval: 'required',
        agents: [{ name: 'only', role: 'tester', task: 'run', runner: 'ok' }],
      });
      return started.structuredContent as { sessionId: string; planVersion: number };
    };
    const first = await awaiting();
    // A plan version other than the waiting one: nothing is decided.
    const stale = await call(connected.client, 'approve_plan', {
      session_id: first.sessionId,
      plan_version: first.planVersion + 1,
    });
    assert.equal(codeOf(stale), 'INVALID_STATE');
    const staleReject = await call(connected.client, 'reject_plan', {
      session_id: first.sessionId,
      reason: 'no',
      plan_version: first.planVersion + 1,
    });
    assert.equal(codeOf(staleReject), 'INVALID_STATE');
    const approved = await call(connected.client, 'approve_plan', {
      session_id: first.sessionId,
      plan_version: first.planVersion,
    });
    assert.notEqual(approved.isError, true, JSON.stringify(approved.content));
    const second = await awaiting();
    const rejected = await call(connected.client, 'reject_plan', {
      session_id: second.sessionId,
      reason: 'no',
    });
    assert.notEqual(rejected.isError, true, JSON.stringify(rejected.content));
    const steered = await awaiting();
    await markPlanOrchestrated(server.app.database.db, steered.sessionId);
    const sent = await call(connected.client, 'send_message', {
      session_id: steered.sessionId,
      message: 'hi',
    });
    assert.notEqual(sent.isError, true, JSON.stringify(sent.content));

    // The records name what each call did, as REST's do (sessions:reject, sessions:steer), not the
    // permission it needs (sessions:approve, sessions:create).
    const records = (await server.app.security.auditLog.list({ limit: 1000 })).items.slice(before);
    const steering = records.filter((record) =>
      /approve_plan|reject_plan|send_message/.test(record.reason ?? ''),
    );
    assert.deepEqual(
      steering.map((record) => [record.action, record.outcome, record.reason, record.target?.id]),
      [
        ['sessions:approve', 'failure', 'mcp tool approve_plan: INVALID_STATE', first.sessionId],
        ['sessions:reject', 'failure', 'mcp tool reject_plan: INVALID_STATE', first.sessionId],
        ['sessions:approve', 'success', 'mcp tool approve_plan', first.sessionId],
        ['sessions:reject', 'success', 'mcp tool reject_plan', second.sessionId],
        ['sessions:steer', 'success', 'mcp tool send_message', steered.sessionId],
      ],
    );
    await call(connected.client, 'cancel_session', { session_id: steered.sessionId });
  });

  test('tool descriptions lead a model to tools, not to REST routes it cannot call', async () => {
    const { tools } = await connected.client.listTools();
    for (const tool of tools) {
      for (const text of descriptionsOf(tool)) {
        assert.doesNotMatch(text, /\/v1\/|\b(GET|POST) \//, `${tool.name}: ${text}`);
      }
    }
    const orchestrate = tools.find((tool) => tool.name === 'orchestrate');
    const properties = orchestrate?.inputSchema.properties as Record<string, { description?: string }>;
    assert.match(properties.approval?.description ?? '', /approve_plan/);
    const agents = properties.agents as { items: { properties: { role: { description: string } } } };
    assert.match(agents.items.properties.role.description, /list_roles/);
    assert.match(orchestrate?.description ?? '', /approve_plan/);
    assert.match(connected.client.getInstructions() ?? '', /approve_plan/);
  });
});
