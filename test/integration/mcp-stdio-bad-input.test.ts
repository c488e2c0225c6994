// `maos mcp` answers a stdin line that is not JSON with -32700 and one that is not a JSON-RPC
// message with -32600 (id null, as JSON-RPC 2.0 says), and keeps serving: before, such lines were
// dropped without an answer. The real binary in embedded mode, spoken to with raw lines.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const MAOS_BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
};

test('maos mcp answers unreadable stdin lines and keeps serving', { timeout: 60_000 }, async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-mcp-bad-input-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const configPath = join(dataDir, 'maos.json');
  writeFileSync(configPath, JSON.stringify({ logLevel: 'silent' }));
  const child = spawn(
    process.execPath,
    [MAOS_BIN, 'mcp', '--mode', 'embedded', '--config', configPath, '--data-dir', dataDir],
    { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' }, stdio: 'pipe' },
  );
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (stdout.includes('"id":2')) child.stdin.end();
  });
  child.stdin.on('error', () => {});
  const lines = [
    JSON.stringify(INITIALIZE),
    'not json at all',
    '[1, 2]',
    '{"id": 7}',
    JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }),
  ];
  child.stdin.write(`${lines.join('\n')}\n`);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(killer);
  assert.equal(code, 0);

  const messages = stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as { id: unknown; error?: { code: number; message: string } });
  const unreadable = messages.filter((message) => message.id === null);
  assert.deepEqual(
    unreadable.map((message) => message.error?.code),
    [-32700, -32600, -32600],
  );
  assert.match(unreadable[0]?.error?.message ?? '', /^Parse error/);
  // The valid requests around them were answered.
  assert.ok(messages.some((message) => message.id === 1 && message.error === undefined));
  assert.ok(messages.some((message) => message.id === 2 && message.error === undefined));
});
