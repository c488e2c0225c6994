// `maos mcp` over stdio, spawned as a real process and driven by the SDK's StdioClientTransport:
// remote mode against a running server, and embedded mode with its own engine on a data dir; both
// offer the tools of /mcp, plan approval included.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { type ScriptedLlmServer, startLlmServer } from '../fixtures/llm-server.ts';
import { type McpTestServer, startMcpTestServer, toolErrorOf } from '../fixtures/mcp-server.ts';
import { TEST_RUNNERS } from '../fixtures/server.ts';

const MAOS_BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));

interface StatusView {
  sessionId: string;
  status: string;
  done: boolean;
  tasks: Array<{ name: string; status: string; outputUri: string }>;
}

/** Spawns `maos mcp <args>` and connects an SDK client to its stdin/stdout. */
async function spawnMcp(args: string[], env: Record<string, string> = {}): Promise<Client> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [MAOS_BIN, 'mcp', ...args],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stderr: 'pipe',
  });
  const client = new Client({ name: 'maos-stdio-test', version: '1.0.0' });
  await client.connect(transport);
  // Listed tools make the client check every tool result against the tool's output schema.
  await client.listTools();
  return client;
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

async function runToCompletion(client: Client): Promise<StatusView> {
  const started = await call(client, 'orchestrate', {
    objective: 'two steps over stdio',
    strategy: 'sequential',
    agents: [
      { name: 'one', role: 'tester', task: 'first', runner: 'echo' },
      { name: 'two', role: 'tester', task: 'second', runner: 'echo' },
    ],
    wait_seconds: 30,
  });
  assert.notEqual(started.isError, true, JSON.stringify(started.content));
  const view = started.structuredContent as unknown as StatusView;
  assert.equal(view.status, 'completed');
  return view;
}

async function readText(client: Client, uri: string): Promise<string> {
  const result = await client.readResource({ uri });
  const first = result.contents[0];
  return first && 'text' in first ? first.text : '';
}

describe('maos mcp over stdio', { timeout: 120_000 }, () => {
  let server: McpTestServer;
  before(async () => {
    server = await startMcpTestServer();
  });
  after(async () => server?.close());

  test('remote mode: tools run against the running server', async (t) => {
    const client = await spawnMcp(['--server', server.url]);
    t.after(() => client.close());
    const { tools } = await client.listTools();
    assert.ok(tools.some((tool) => tool.name === 'orchestrate'));
    const view = await runToCompletion(client);
    // The same session is visible over REST: one engine, two interfaces.
    const rest = await fetch(`${server.url}/v1/sessions/${view.sessionId}`);
    assert.equal(rest.status, 200);
    assert.equal(((await rest.json()) as { status: string }).status, 'completed');
    assert.match(await readText(client, view.tasks[1]?.outputUri ?? ''), /task=second/);
    const missing = await call(client, 'session_status', { session_id: randomUUID() });
    assert.equal(missing.isError, true);
    assert.equal(toolErrorOf(missing)?.code, 'SESSION_NOT_FOUND');
  });

  test('embedded mode: runs its own engine on the data directory', async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'maos-mcp-stdio-'));
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));
    const configPath = join(dataDir, 'maos.json');
    writeFileSync(
      configPath,
      JSON.stringify({ logLevel: 'warn', workers: { pollIntervalMs: 200 }, runners: TEST_RUNNERS }),
    );
    const client = await spawnMcp(['--mode', 'embedded', '--config', configPath, '--data-dir', dataDir]);
    t.after(() => client.close());
    const view = await runToCompletion(client);
    assert.match(await readText(client, view.tasks[0]?.outputUri ?? ''), /task=first/);
    const roles = await call(client, 'list_roles', {});
    assert.ok((roles.structuredContent as { roles: unknown[] }).roles.length >= 10);
  });
});

/** What `tools/list` over HTTP offers with an LLM provider configured (plan approval included). */
const HTTP_TOOLS = [
  'approve_plan',
  'cancel_session',
  'list_roles',
  'orchestrate',
  'reject_plan',
  'retry_session',
  'send_message',
  'session_status',
];

/** Starts a session that stops in awaiting_approval (explicit agents: no LLM call is needed). */
async function startAwaitingApproval(client: Client): Promise<string> {
  const started = await call(client, 'orchestrate', {
    objective: 'needs a go over stdio',
    approval: 'required',
    agents: [{ name: 'only', role: 'tester', task: 'after approval', runner: 'echo' }],
  });
  assert.notEqual(started.isError, true, JSON.stringify(started.content));
  const view = started.structuredContent as unknown as StatusView;
  assert.equal(view.status, 'awaiting_approval');
  return view.sessionId;
}

async function waitForStatus(client: Client, sessionId: string, wanted: string): Promise<StatusView> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const result = await call(client, 'session_status', { session_id: sessionId });
    const view = result.structuredContent as unknown as StatusView;
    if (view.status === wanted) return view;
    assert.ok(Date.now() < deadline, `session still ${view.status}, expected ${wanted}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Lists the tools, approves one waiting session to completion and rejects another. */
async function checkApprovalTools(client: Client): Promise<void> {
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((tool) => tool.name).sort(), HTTP_TOOLS);

  const approvedId = await startAwaitingApproval(client);
  const approved = await call(client, 'approve_plan', { session_id: approvedId });
  assert.notEqual(approved.isError, true, JSON.stringify(approved.content));
  assert.equal((approved.structuredContent as { planVersion: number }).planVersion, 1);
  const done = await waitForStatus(client, approvedId, 'completed');
  assert.match(await readText(client, done.tasks[0]?.outputUri ?? ''), /task=after approval/);
  // Approving twice is a conflict, reported with the REST API's stable code.
  const again = await call(client, 'approve_plan', { session_id: approvedId });
  assert.equal(again.isError, true);
  assert.equal(toolErrorOf(again)?.code, 'INVALID_STATE');

  const rejectedId = await startAwaitingApproval(client);
  // Its agents were given: no orchestrator would read a steering message, so it is refused.
  const steered = await call(client, 'send_message', { session_id: rejectedId, message: 'keep it small' });
  assert.equal(steered.isError, true, JSON.stringify(steered.content));
  assert.equal(toolErrorOf(steered)?.code, 'INVALID_STATE');
  const rejected = await call(client, 'reject_plan', { session_id: rejectedId, reason: 'not today' });
  assert.notEqual(rejected.isError, true, JSON.stringify(rejected.content));
  await waitForStatus(client, rejectedId, 'failed');
}

describe('maos mcp over stdio: plan approval tools', { timeout: 120_000 }, () => {
  let llm: ScriptedLlmServer;
  let providers: Record<string, unknown>;
  before(async () => {
    // Plan approval comes with the orchestrator, so a provider is configured; the agents run on
    // the test runners and never call it.
    llm = await startLlmServer({ apiKey: 'k' });
    providers = { local: { type: 'openai-compatible', baseURL: llm.openaiBaseURL, model: 'm', apiKey: 'k' } };
  });
  after(async () => llm?.close());

  test('remote mode approves and rejects through the running server', async (t) => {
    const server = await startMcpTestServer({ config: { providers } });
    t.after(() => server.close());
    const client = await spawnMcp(['--server', server.url]);
    t.after(() => client.close());
    await checkApprovalTools(client);
  });

  test('embedded mode approves and rejects with its own engine', async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'maos-mcp-stdio-approval-'));
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));
    const configPath = join(dataDir, 'maos.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        logLevel: 'warn',
        workers: { pollIntervalMs: 200 },
        runners: TEST_RUNNERS,
        providers,
      }),
    );
    const client = await spawnMcp(['--mode', 'embedded', '--config', configPath, '--data-dir', dataDir]);
    t.after(() => client.close());
    await checkApprovalTools(client);
  });
});
