// `maos mcp` over stdio, spawned as a real process and driven by the SDK's StdioClientTransport:
// remote mode against a running server, and embedded mode with its own engine on a data dir.
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
import { type McpTestServer, startMcpTestServer } from '../fixtures/mcp-server.ts';
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
    assert.equal((missing.structuredContent as { error: { code: string } }).error.code, 'SESSION_NOT_FOUND');
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
