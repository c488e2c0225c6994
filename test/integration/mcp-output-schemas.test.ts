// Every MAOS tool declares an output schema, and each successful call returns structuredContent that
// conforms to it plus the same JSON as text. The reference SDK client checks the structured result
// against the listed schema in callTool (and throws when it is missing or does not conform); the
// test checks it again itself, so it does not depend on that client's behaviour. Tool errors carry
// no structured content: the same client would check it against the schema and throw.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv-provider.js';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import {
  connectHttpClient,
  connectRemoteStdioClient,
  connectSteeringClient,
  type McpTestServer,
  startMcpTestServer,
  toolErrorOf,
  UNUSED_PROVIDER_CONFIG,
} from '../fixtures/mcp-server.ts';
import { markPlanOrchestrated } from '../fixtures/orchestrated-plan.ts';

const ACTOR = { tenantId: 'default', principalId: 'output-schema-test' };
const validator = new AjvJsonSchemaValidator();

const ALL_TOOLS = [
  'approve_plan',
  'cancel_session',
  'list_roles',
  'orchestrate',
  'reject_plan',
  'retry_session',
  'send_message',
  'session_status',
];

/**
 * Calls every tool successfully through `client` (which has listed `tools`, so the SDK checks each
 * result against its output schema) and checks each structured result and text block here too.
 */
async function callEveryTool(client: Client, tools: Tool[], server: McpTestServer): Promise<void> {
  const checked = new Set<string>();

  async function callOk<T = Record<string, unknown>>(
    name: string,
    args: Record<string, unknown>,
  ): Promise<T> {
    const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
    assert.notEqual(result.isError, true, `${name}: ${JSON.stringify(result.content)}`);
    assert.ok(result.structuredContent, `${name} returns structuredContent`);
    const tool = tools.find((t) => t.name === name);
    assert.ok(tool?.outputSchema, `${name} declares an outputSchema`);
    const verdict = validator.getValidator(tool.outputSchema)(result.structuredContent);
    assert.ok(verdict.valid, `${name}: ${verdict.valid ? '' : verdict.errorMessage}`);
    // The text block holds the same JSON, for clients that read text only.
    const text = result.content.find((block) => block.type === 'text');
    assert.deepEqual(JSON.parse(text?.type === 'text' ? text.text : 'null'), result.structuredContent);
    checked.add(name);
    return result.structuredContent as T;
  }

  async function waitForStatus(sessionId: string, wanted: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const view = await callOk<{ status: string }>('session_status', { session_id: sessionId });
      if (view.status === wanted) return;
      assert.ok(Date.now() < deadline, `session still ${view.status}, expected ${wanted}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  const roles = await callOk<{ roles: Array<{ instructions?: string }> }>('list_roles', {});
  assert.equal(roles.roles[0]?.instructions, undefined);
  const withInstructions = await callOk<{ roles: Array<{ instructions?: string }> }>('list_roles', {
    include_instructions: true,
  });
  assert.equal(typeof withInstructions.roles[0]?.instructions, 'string');

  // A session that completes, waited for in the call: results, usage and finish times filled in.
  const done = await callOk<{ sessionId: string; status: string; tasks: unknown[] }>('orchestrate', {
    objective: 'shape check',
    agents: [
      { name: 'first', role: 'tester', task: 'one', runner: 'echo' },
      { name: 'second', role: 'tester', task: 'two', runner: 'echo', depends_on: ['first'] },
    ],
    strategy: 'pipeline',
    metadata: { ticket: 'T-1' },
    wait_seconds: 30,
  });
  assert.equal(done.status, 'completed');
  await callOk('session_status', { session_id: done.sessionId, recent_events: 50 });

  // Approval: as planned, and with an edited plan whose task names are rewritten.
  const approvedId = (
    await callOk<{ sessionId: string }>('orchestrate', {
      objective: 'approve me',
      approval: 'required',
      agents: [{ name: 'only', role: 'tester', task: 'after approval', runner: 'echo' }],
    })
  ).sessionId;
  await waitForStatus(approvedId, 'awaiting_approval');
  const approved = await callOk<{ renamedTasks?: Record<string, string> }>('approve_plan', {
    session_id: approvedId,
    plan: {
      phases: [
        {
          name: 'main',
          tasks: [{ name: 'run it', role: 'tester', instructions: 'edited', runner: 'echo', dependsOn: [] }],
        },
      ],
    },
  });
  assert.deepEqual(approved.renamedTasks, { 'run it': 'run-it' });
  await waitForStatus(approvedId, 'completed');

  const rejectedId = (
    await callOk<{ sessionId: string }>('orchestrate', {
      objective: 'reject me',
      approval: 'required',
      agents: [{ name: 'only', role: 'tester', task: 'never', runner: 'echo' }],
    })
  ).sessionId;
  await waitForStatus(rejectedId, 'awaiting_approval');
  await callOk('reject_plan', { session_id: rejectedId, reason: 'not today' });

  // Steering needs a session its orchestrator plans; then cancel it.
  const running = await callOk<{ sessionId: string }>('orchestrate', {
    objective: 'steer me',
    agents: [{ name: 's', role: 'tester', task: 'sleep', runner: 'sleep' }],
  });
  await markPlanOrchestrated(server.app.database.db, running.sessionId);
  await callOk('send_message', { session_id: running.sessionId, message: 'prefer PostgreSQL' });
  await callOk('cancel_session', { session_id: running.sessionId });
  // The cancelled session again, as a new one that runs its task anew; then cancel that too.
  const retried = await callOk<{ created: boolean; sessionId: string; retryOf: string | null }>(
    'retry_session',
    { session_id: running.sessionId, budget: { maxTokens: 1000 } },
  );
  assert.equal(retried.created, true);
  assert.notEqual(retried.sessionId, running.sessionId);
  // The retry names its original, as the tool's description says; the original names none.
  assert.equal(retried.retryOf, running.sessionId);
  const original = await callOk<{ retryOf: string | null }>('session_status', {
    session_id: running.sessionId,
  });
  assert.equal(original.retryOf, null);
  await callOk('cancel_session', { session_id: retried.sessionId });

  assert.deepEqual([...checked].sort(), tools.map((tool) => tool.name).sort(), 'every tool called');
}

describe('MCP tool output schemas', { timeout: 60_000 }, () => {
  let server: McpTestServer;
  let client: Client;
  let tools: Tool[];
  /** `maos mcp` in remote mode: the results are built from the REST API's answers. */
  let remote: Client;
  let remoteTools: Tool[];
  before(async () => {
    // The provider is needed for approval; explicit agents with command runners need no planning.
    server = await startMcpTestServer({ config: UNUSED_PROVIDER_CONFIG });
    client = await connectSteeringClient(server.app, ACTOR, 'output-schema-test');
    // Listing the tools is what makes the client check results against their output schemas.
    tools = (await client.listTools()).tools;
    remote = await connectRemoteStdioClient(server.url, 'output-schema-remote');
    remoteTools = (await remote.listTools()).tools;
  });
  after(async () => {
    await client?.close();
    await remote?.close();
    await server?.close();
  });

  test('every tool declares an object output schema', () => {
    assert.deepEqual(tools.map((tool) => tool.name).sort(), ALL_TOOLS);
    const missing = tools.filter((tool) => tool.outputSchema?.type !== 'object').map((tool) => tool.name);
    assert.deepEqual(missing, [], 'tools without an output schema');
  });

  test('a successful call of every tool returns structured content that conforms', async () => {
    await callEveryTool(client, tools, server);
  });

  test('maos mcp in remote mode returns the same conforming results', async () => {
    assert.deepEqual(remoteTools.map((tool) => tool.name).sort(), ALL_TOOLS);
    await callEveryTool(remote, remoteTools, server);
  });

  test('a tool error stays an isError result without structured content', async () => {
    const result = (await client.callTool({
      name: 'session_status',
      arguments: { session_id: '0199aaaa-0000-7000-8000-000000000000' },
    })) as CallToolResult;
    assert.equal(result.isError, true);
    assert.equal(result.structuredContent, undefined);
    assert.equal(toolErrorOf(result)?.code, 'SESSION_NOT_FOUND');
  });
});

test('a task a model served conforms too: its usage per provider and model', async (t) => {
  const { server } = await startLlmAppStack(t, {
    handler: () => ({ text: 'x'.repeat(3_000), usage: { inputTokens: 20, outputTokens: 5 } }),
  });
  // connectHttpClient lists the tools: callTool throws when a result does not conform.
  const connected = await connectHttpClient(server.url);
  t.after(() => connected.close());
  const result = (await connected.client.callTool({
    name: 'orchestrate',
    arguments: { objective: 'model work', agents: [{ role: 'researcher', task: 'write' }], wait_seconds: 30 },
  })) as CallToolResult;
  assert.notEqual(result.isError, true, JSON.stringify(result.content));
  const view = result.structuredContent as {
    status: string;
    tasks: Array<{ models?: Array<{ provider: string; model: string }>; resultTruncated?: boolean }>;
  };
  assert.equal(view.status, 'completed');
  assert.deepEqual(
    view.tasks.map((task) => task.models?.map((entry) => `${entry.provider}/${entry.model}`)),
    [['local/m']],
  );
  assert.equal(view.tasks[0]?.resultTruncated, true);
});
