// `maos mcp` in embedded mode logs as `maos serve` does (the config's `logging.environment` and
// `logging.format`), and only ever on stderr: stdout carries nothing but the MCP protocol.
// The real binary is spawned and spoken to with raw JSON-RPC lines, so any stray stdout byte shows.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const MAOS_BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));

const REQUESTS = [
  {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
  },
  { jsonrpc: '2.0', method: 'notifications/initialized' },
  { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'list_roles', arguments: {} } },
];

/** Runs `maos mcp --mode embedded` with `logging`, sends the requests, and returns both streams. */
async function runEmbedded(
  logging: Record<string, unknown>,
  env: Record<string, string> = {},
): Promise<{ stdout: string; stderr: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-mcp-logging-'));
  try {
    const configPath = join(dataDir, 'maos.json');
    writeFileSync(configPath, JSON.stringify({ logLevel: 'info', logging }));
    const child = spawn(
      process.execPath,
      [MAOS_BIN, 'mcp', '--mode', 'embedded', '--config', configPath, '--data-dir', dataDir],
      { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stdio: 'pipe' },
    );
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      // The last answer is in: closing stdin ends the server.
      if (stdout.includes('"id":2')) child.stdin.end();
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.stdin.on('error', () => {});
    child.stdin.write(`${REQUESTS.map((request) => JSON.stringify(request)).join('\n')}\n`);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(killer);
    assert.equal(code, 0, stderr);
    return { stdout, stderr };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Every stdout line is a JSON-RPC message, and both requests were answered. */
function assertOnlyProtocol(stdout: string): void {
  const lines = stdout.split('\n').filter((line) => line !== '');
  for (const line of lines) assert.equal(JSON.parse(line).jsonrpc, '2.0', line);
  assert.deepEqual(
    lines.map((line) => JSON.parse(line).id),
    [1, 2],
  );
}

test('maos mcp --mode embedded logs like the server', { timeout: 90_000 }, async (t) => {
  await t.test(
    "logging.environment is each line's service.environment; stdout stays protocol only",
    async () => {
      const { stdout, stderr } = await runEmbedded({ environment: 'staging', format: 'json' });
      assertOnlyProtocol(stdout);
      const lines = stderr.split('\n').filter((line) => line.startsWith('{'));
      assert.ok(lines.length > 0, stderr);
      for (const line of lines) assert.equal(JSON.parse(line)['service.environment'], 'staging', line);
    },
  );

  await t.test('logging.format pretty gives human lines on stderr, never on stdout', async () => {
    const { stdout, stderr } = await runEmbedded({ format: 'pretty' });
    assertOnlyProtocol(stdout);
    assert.match(stderr, /INFO.*migrations/);
    assert.doesNotMatch(stderr, /"log\.level"/);
  });

  await t.test(
    'OTEL_TRACES_EXPORTER=console prints spans on stderr, one JSON line each, never on stdout',
    async () => {
      const { stdout, stderr } = await runEmbedded({ format: 'json' }, { OTEL_TRACES_EXPORTER: 'console' });
      assertOnlyProtocol(stdout);
      const spans = stderr
        .split('\n')
        .filter((line) => line.startsWith('{') && line.includes('"traceId"'))
        .map((line) => JSON.parse(line));
      assert.ok(
        spans.some((span) => span.name === 'tools/call list_roles' && /^[0-9a-f]{32}$/.test(span.traceId)),
        stderr,
      );
    },
  );
});
