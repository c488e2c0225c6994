// `maos mcp` answers a stdin line that is not JSON with -32700 and one that is not a JSON-RPC
// message with -32600 (id null, as JSON-RPC 2.0 says), and keeps serving: before, such lines were
// dropped without an answer. A line too long to read (over 10 MiB) is answered -32600 too, and the
// server keeps serving: before, the SDK transport closed on it, which ended the process. The real
// binary in embedded mode, spoken to with raw lines.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MAX_STDIN_LINE_BYTES } from '../../src/mcp/stdin-lines.ts';

const MAOS_BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
};

interface Answer {
  id: unknown;
  error?: { code: number; message: string; data?: { code?: string } };
}

/**
 * Starts `maos mcp` in embedded mode (`config` over a silent log), writes `input` (in the pieces
 * given) to its stdin, closes it once the answers to `untilIds` came, and returns its exit code and
 * the messages it wrote.
 */
async function speakTo(
  t: { after: (fn: () => void) => void },
  input: readonly (string | Buffer)[],
  config: Record<string, unknown> = {},
  untilIds: readonly number[] = [2],
): Promise<{ code: number | null; messages: Answer[] }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-mcp-bad-input-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const configPath = join(dataDir, 'maos.json');
  writeFileSync(configPath, JSON.stringify({ logLevel: 'silent', ...config }));
  const child = spawn(
    process.execPath,
    [MAOS_BIN, 'mcp', '--mode', 'embedded', '--config', configPath, '--data-dir', dataDir],
    { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' }, stdio: 'pipe' },
  );
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (untilIds.every((id) => stdout.includes(`"id":${id}`))) child.stdin.end();
  });
  child.stdin.on('error', () => {});
  for (const piece of input) child.stdin.write(piece);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(killer);
  const messages = stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Answer);
  return { code, messages };
}

test('maos mcp answers unreadable stdin lines and keeps serving', { timeout: 60_000 }, async (t) => {
  const lines = [
    JSON.stringify(INITIALIZE),
    'not json at all',
    '[1, 2]',
    '{"id": 7}',
    JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }),
  ];
  const { code, messages } = await speakTo(t, [`${lines.join('\n')}\n`]);
  assert.equal(code, 0);

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

test('maos mcp answers a stdin line too long to read and keeps serving', { timeout: 60_000 }, async (t) => {
  // A tool call whose objective makes the line 1 KiB longer than maos mcp reads, written in pieces
  // as a pipe passes it on.
  const head = `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"orchestrate","arguments":{"objective":"`;
  const tail = '"}}}\n';
  const filler = Buffer.alloc(MAX_STDIN_LINE_BYTES + 1024 - head.length - tail.length + 1, 'x');
  const pieces: Array<string | Buffer> = [`${JSON.stringify(INITIALIZE)}\n`, head];
  for (let at = 0; at < filler.length; at += 1024 * 1024) pieces.push(filler.subarray(at, at + 1024 * 1024));
  pieces.push(tail, `${JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' })}\n`);
  const { code, messages } = await speakTo(t, pieces);
  assert.equal(code, 0);

  const unreadable = messages.filter((message) => message.id === null);
  assert.equal(unreadable.length, 1, JSON.stringify(messages));
  assert.equal(unreadable[0]?.error?.code, -32600);
  assert.equal(unreadable[0]?.error?.data?.code, 'PAYLOAD_TOO_LARGE');
  assert.match(unreadable[0]?.error?.message ?? '', /longer than 10485760 bytes/);
  // The request of the long line was not run; the one after it was answered.
  assert.ok(!messages.some((message) => message.id === 5));
  assert.ok(messages.some((message) => message.id === 2 && message.error === undefined));
});

test('maos mcp refuses a stdin line that is not UTF-8, instead of storing U+FFFD in its place', {
  timeout: 60_000,
}, async (t) => {
  const orchestrate = Buffer.from(
    `${JSON.stringify({
      jsonrpc: '2.0',
      id: 5,
      method: 'tools/call',
      params: {
        name: 'orchestrate',
        arguments: { objective: 'café', agents: [{ role: 'tester', task: 'x', runner: 'ok' }] },
      },
    })}\n`,
    // é as the one byte 0xE9: not UTF-8.
    'latin1',
  );
  const { code, messages } = await speakTo(
    t,
    [
      `${JSON.stringify(INITIALIZE)}\n`,
      orchestrate,
      Buffer.from([0xff, 0x0a]),
      `${JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'resources/list' })}\n`,
    ],
    { runners: { ok: { command: ['true'] } } },
  );
  assert.equal(code, 0);

  // The request is answered with its id, so its client is not left waiting.
  const refused = messages.find((message) => message.id === 5);
  assert.equal(refused?.error?.code, -32602, JSON.stringify(messages));
  assert.equal(refused?.error?.data?.code, 'VALIDATION_FAILED');
  assert.match(refused?.error?.message ?? '', /not valid UTF-8/);
  const unreadable = messages.filter((message) => message.id === null);
  assert.deepEqual(
    unreadable.map((message) => [message.error?.code, message.error?.data?.code]),
    [[-32700, 'VALIDATION_FAILED']],
  );
  // No session was started with the text altered.
  const listed = messages.find((message) => message.id === 2) as
    | { result?: { resources: Array<{ uri: string }> } }
    | undefined;
  assert.deepEqual(
    listed?.result?.resources.map((resource) => resource.uri),
    ['maos://roles'],
  );
});

test('maos mcp stopped by SIGTERM exits while its stdin is still open', { timeout: 60_000 }, async () => {
  // Remote mode: nothing to stop but the session. Reading stdin through the line reader above must
  // not keep the process alive once the session is closed (it did until stdin was paused again).
  const child = spawn(process.execPath, [MAOS_BIN, 'mcp', '--server', 'http://127.0.0.1:4'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    stdio: 'pipe',
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  let stdout = '';
  const initialized = new Promise<void>((resolve) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (stdout.includes('"id":1')) resolve();
    });
  });
  child.stdin.on('error', () => {});
  child.stdin.write(`${JSON.stringify(INITIALIZE)}\n`);
  await initialized;
  const ended = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('close', (code, signal) => resolve([code, signal])),
  );
  child.kill('SIGTERM');
  const [code, signal] = await ended;
  clearTimeout(killer);
  assert.deepEqual([code, signal], [0, null]);
});
