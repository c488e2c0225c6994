// `maos` writing into a pipe its reader closed (`maos … | head -1`, `maos … 2>&1 | head -1`, a log
// shipper gone): the command ends quietly, and a closed stderr does not change its exit status.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../fixtures/free-port.ts';

const BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));

interface ClosedRun {
  code: number | null;
  /** What the stream left open received. */
  other: string;
}

/**
 * Runs `maos <args>` with `closed` ('stdout' or 'stderr') a pipe whose reader is gone before the
 * command writes to it, and the other stream collected.
 */
function runWithClosed(closed: 'stdout' | 'stderr', args: string[]): Promise<ClosedRun> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('MAOS_') && key !== 'NO_COLOR') env[key] = value;
  }
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  // Closed at once: Node takes far longer to start than this takes to reach the child.
  const [gone, kept] = closed === 'stdout' ? [child.stdout, child.stderr] : [child.stderr, child.stdout];
  gone.destroy();
  let other = '';
  kept.setEncoding('utf8').on('data', (chunk: string) => {
    other += chunk;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, other });
    });
  });
}

test('a closed stderr keeps the exit status of a usage error (2), not 1', async () => {
  const result = await runWithClosed('stderr', ['sessions', 'list', '--status', 'bogus']);
  assert.equal(result.code, 2);
  assert.equal(result.other, '');
});

test('a closed stderr keeps the exit status of an unreachable server (3)', async () => {
  const port = await freePort();
  const result = await runWithClosed('stderr', ['sessions', 'list', '--server', `http://127.0.0.1:${port}`]);
  assert.equal(result.code, 3);
});

test('a closed stdout ends `maos --help` quietly with 0', async () => {
  const result = await runWithClosed('stdout', ['--help']);
  assert.equal(result.code, 0);
  assert.equal(result.other, '');
});
