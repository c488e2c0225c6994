// Claude Code's own MCP client against /mcp, exactly as docs/mcp.md tells users to add MAOS:
// `claude mcp add --transport http …` then `claude mcp list` reports the health check. No API key
// is involved. Skips, saying why, when npx cannot fetch Claude Code.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type McpTestServer, startMcpTestServer } from '../fixtures/mcp-server.ts';

/** Pinned so a new release cannot change what this test checks. */
const CLAUDE_CODE = '@anthropic-ai/claude-code@2.1.332';
/** The first run downloads the package; later runs use the npm cache. */
const FETCH_TIMEOUT_MS = 300_000;
const CALL_TIMEOUT_MS = 120_000;

interface RunResult {
  code: number | null;
  output: string;
  error?: Error;
}

/** Runs `claude <args>` with its own HOME (no user settings, no login) in `cwd`. */
function runClaude(args: string[], home: string, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn('npx', ['-y', CLAUDE_CODE, ...args], {
      cwd: home,
      env: {
        ...process.env,
        // npm keeps the user's registry settings and cache; Claude Code gets an empty HOME.
        npm_config_userconfig: process.env.npm_config_userconfig ?? join(homedir(), '.npmrc'),
        npm_config_cache: process.env.npm_config_cache ?? join(homedir(), '.npm'),
        HOME: home,
        npm_config_update_notifier: 'false',
        NO_COLOR: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', (error) => resolve({ code: null, output, error }));
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('Claude Code connects to /mcp', { timeout: FETCH_TIMEOUT_MS + 6 * CALL_TIMEOUT_MS }, () => {
  let open: McpTestServer;
  let secure: McpTestServer;
  const homes: string[] = [];
  let unavailable: string | undefined;
  const newHome = () => {
    const home = mkdtempSync(join(tmpdir(), 'maos-claude-'));
    homes.push(home);
    return home;
  };

  before(async () => {
    const probe = await runClaude(['--version'], newHome(), FETCH_TIMEOUT_MS);
    if (probe.code !== 0) {
      unavailable = `npx could not fetch ${CLAUDE_CODE}: ${probe.error?.message ?? probe.output.trim().split('\n').slice(-3).join(' | ')}`;
      return;
    }
    open = await startMcpTestServer();
    secure = await startMcpTestServer({ secure: true });
  });
  after(async () => {
    await open?.close();
    await secure?.close();
    for (const home of homes) rmSync(home, { recursive: true, force: true });
  });

  test('`claude mcp add --transport http` then `claude mcp list`: Connected', async (t) => {
    if (unavailable) return t.skip(unavailable);
    const home = newHome();
    const added = await runClaude(
      ['mcp', 'add', '--transport', 'http', 'maos', `${open.url}/mcp`],
      home,
      CALL_TIMEOUT_MS,
    );
    assert.equal(added.code, 0, added.output);
    // `claude mcp list` exits 0 whatever the health is: the text is the result.
    const listed = await runClaude(['mcp', 'list'], home, CALL_TIMEOUT_MS);
    assert.match(listed.output, new RegExp(`maos: ${open.url}/mcp \\(HTTP\\) - ✔ Connected`));
  });

  test('with credentials required: Connected with the Authorization header, not without', async (t) => {
    if (unavailable) return t.skip(unavailable);
    const key = await secure.createKey('default', ['developer']);
    const withKey = newHome();
    await runClaude(
      [
        'mcp',
        'add',
        '--transport',
        'http',
        'maos',
        `${secure.url}/mcp`,
        '--header',
        `Authorization: Bearer ${key}`,
      ],
      withKey,
      CALL_TIMEOUT_MS,
    );
    assert.match(
      (await runClaude(['mcp', 'list'], withKey, CALL_TIMEOUT_MS)).output,
      /maos: .* - ✔ Connected/,
    );

    const withoutKey = newHome();
    await runClaude(
      ['mcp', 'add', '--transport', 'http', 'maos', `${secure.url}/mcp`],
      withoutKey,
      CALL_TIMEOUT_MS,
    );
    const listed = await runClaude(['mcp', 'list'], withoutKey, CALL_TIMEOUT_MS);
    assert.match(listed.output, /maos: /);
    assert.doesNotMatch(listed.output, /✔ Connected/);
  });
});
