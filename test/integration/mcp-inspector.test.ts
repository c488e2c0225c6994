// Drives /mcp with the official MCP Inspector CLI (fetched with npx): an independent client
// implementation lists the tools and calls them. Skips, saying why, when npx cannot fetch it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type McpTestServer, startMcpTestServer, toolErrorOf } from '../fixtures/mcp-server.ts';

/** Pinned so a new Inspector release cannot change what this test checks. */
const INSPECTOR = '@modelcontextprotocol/inspector@2.12.0';
/** The first run downloads the package; later runs use the npm cache. */
const FETCH_TIMEOUT_MS = 240_000;
const CALL_TIMEOUT_MS = 90_000;

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  error?: Error;
}

/** Runs `command args` in `cwd`: `npx -y` with the pinned package, or the CLI it installed. */
function run(command: string, args: string[], cwd: string, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd,
      env: { ...process.env, npm_config_update_notifier: 'false', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', (error) => resolve({ code: null, stdout, stderr, error }));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The CLI prints the JSON result first; tool errors add a second JSON line after it. */
function parseFirstJson(stdout: string): Record<string, unknown> {
  const end = stdout.lastIndexOf('\n}');
  return JSON.parse(end === -1 ? stdout : stdout.slice(0, end + 2)) as Record<string, unknown>;
}

// The tests are independent reads of one server: they run at the same time.
describe('MCP Inspector CLI against /mcp', {
  timeout: FETCH_TIMEOUT_MS + 3 * CALL_TIMEOUT_MS,
  concurrency: true,
}, () => {
  let server: McpTestServer;
  let cwd: string;
  let unavailable: string | undefined;
  /** The Inspector CLI as npx installed it (set by the probe); npx costs about two seconds a call. */
  let inspector = '';
  const runNpx = (args: string[], dir: string, timeoutMs: number) => run(inspector, args, dir, timeoutMs);

  before(async () => {
    // An empty directory: npx must not resolve anything from this project's package.json.
    cwd = mkdtempSync(join(tmpdir(), 'maos-inspector-'));
    // The probe runs the Inspector through npx and names the CLI npx installed for the calls below.
    const probe = await run(
      'npx',
      ['-y', `--package=${INSPECTOR}`, '-c', 'inspector --version && command -v inspector'],
      cwd,
      FETCH_TIMEOUT_MS,
    );
    const installed = probe.stdout.match(/^\S*\/inspector$/m)?.[0];
    if (probe.code !== 0 || !installed) {
      unavailable = `npx could not fetch ${INSPECTOR}: ${probe.error?.message ?? probe.stderr.trim().split('\n').slice(-3).join(' | ')}`;
      return;
    }
    inspector = installed;
    server = await startMcpTestServer();
  });
  after(async () => {
    await server?.close();
    rmSync(cwd, { recursive: true, force: true });
  });

  test('tools/list shows the MAOS tools with their schemas', async (t) => {
    if (unavailable) return t.skip(unavailable);
    const result = await runNpx(
      ['--cli', `${server.url}/mcp`, '--transport', 'http', '--method', 'tools/list'],
      cwd,
      CALL_TIMEOUT_MS,
    );
    assert.equal(result.code, 0, result.stderr);
    const { tools } = parseFirstJson(result.stdout) as {
      tools: Array<{ name: string; inputSchema: { type: string } }>;
    };
    const names = tools.map((tool) => tool.name);
    for (const name of ['orchestrate', 'session_status', 'list_roles', 'cancel_session']) {
      assert.ok(names.includes(name), `${name} in ${names.join(', ')}`);
    }
    assert.ok(tools.every((tool) => tool.inputSchema.type === 'object'));
  });

  test('tools/call runs a tool; a failing call reports the stable error code', async (t) => {
    if (unavailable) return t.skip(unavailable);
    const roles = await runNpx(
      [
        '--cli',
        `${server.url}/mcp`,
        '--transport',
        'http',
        '--method',
        'tools/call',
        '--tool-name',
        'list_roles',
      ],
      cwd,
      CALL_TIMEOUT_MS,
    );
    assert.equal(roles.code, 0, roles.stderr);
    const listed = parseFirstJson(roles.stdout) as { structuredContent: { roles: Array<{ name: string }> } };
    assert.ok(listed.structuredContent.roles.some((role) => role.name === 'architect'));

    const missing = await runNpx(
      [
        '--cli',
        `${server.url}/mcp`,
        '--transport',
        'http',
        '--method',
        'tools/call',
        '--tool-name',
        'session_status',
        '--tool-arg',
        'session_id=0199aaaa-0000-7000-8000-000000000000',
      ],
      cwd,
      CALL_TIMEOUT_MS,
    );
    assert.notEqual(missing.code, 0, 'a tool error is a failed CLI call');
    const failed = parseFirstJson(missing.stdout) as { isError: boolean; content: unknown };
    assert.equal(failed.isError, true);
    assert.equal(toolErrorOf(failed)?.code, 'SESSION_NOT_FOUND');
  });
});
