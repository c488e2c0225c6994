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

/**
 * Runs `command args` with its own HOME (no user settings, no login) in `cwd`: `npx -y` with the
 * pinned package, or the `claude` it installed (npx costs about two seconds a call).
 */
function run(command: string, args: string[], home: string, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
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

// The tests (and the two clients of the second) are independent, each with its own HOME: they run
// at the same time.
describe('Claude Code connects to /mcp', {
  timeout: FETCH_TIMEOUT_MS + 6 * CALL_TIMEOUT_MS,
  concurrency: true,
}, () => {
  let open: McpTestServer;
  let secure: McpTestServer;
  const homes: string[] = [];
  let unavailable: string | undefined;
  const newHome = () => {
    const home = mkdtempSync(join(tmpdir(), 'maos-claude-'));
    homes.push(home);
    return home;
  };

  /** `claude` as npx installed it (set by the probe). */
  let claude = '';
  const runClaude = (args: string[], home: string, timeoutMs: number) => run(claude, args, home, timeoutMs);

  before(async () => {
    // The probe runs Claude Code through npx and names the `claude` npx installed for the calls below.
    const probe = await run(
      'npx',
      ['-y', `--package=${CLAUDE_CODE}`, '-c', 'claude --version && command -v claude'],
      newHome(),
      FETCH_TIMEOUT_MS,
    );
    const installed = probe.output.match(/^\S*\/claude$/m)?.[0];
    if (probe.code !== 0 || !/Claude Code/.test(probe.output) || !installed) {
      unavailable = `npx could not fetch ${CLAUDE_CODE}: ${probe.error?.message ?? probe.output.trim().split('\n').slice(-3).join(' | ')}`;
      return;
    }
    claude = installed;
    [open, secure] = await Promise.all([startMcpTestServer(), startMcpTestServer({ secure: true })]);
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
    const withKey = async () => {
      const home = newHome();
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
        home,
        CALL_TIMEOUT_MS,
      );
      assert.match(
        (await runClaude(['mcp', 'list'], home, CALL_TIMEOUT_MS)).output,
        /maos: .* - ✔ Connected/,
      );
    };
    const withoutKey = async () => {
      const home = newHome();
      await runClaude(
        ['mcp', 'add', '--transport', 'http', 'maos', `${secure.url}/mcp`],
        home,
        CALL_TIMEOUT_MS,
      );
      const listed = await runClaude(['mcp', 'list'], home, CALL_TIMEOUT_MS);
      assert.match(listed.output, /maos: /);
      assert.doesNotMatch(listed.output, /✔ Connected/);
    };
    await Promise.all([withKey(), withoutKey()]);
  });
});
