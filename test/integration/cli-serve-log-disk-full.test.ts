// `maos serve > file` whose log's disk is full: every log line fails with ENOSPC (here /dev/full).
// The server serves on, its lines lost, with one note on stderr, and stops as usual on SIGTERM with
// status 0. It used to stop at its first line as though the log's reader had gone (EPIPE) and exit
// 7: a supervisor restarted it onto the same full disk, where it stopped again, before serving.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../fixtures/free-port.ts';
import { waitFor } from '../fixtures/wait-for.ts';

const MAOS_BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));

test('a log on a full disk (ENOSPC) does not stop the server: its lines are lost, told once', {
  skip: !existsSync('/dev/full') && 'needs /dev/full',
  timeout: 120_000,
}, async (t) => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-serve-log-full-')));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'maos.json');
  // Every request logs a line.
  writeFileSync(
    config,
    JSON.stringify({ auth: { mode: 'none' }, logLevel: 'info', shutdown: { graceSeconds: 1 } }),
  );
  const port = await freePort();
  const full = openSync('/dev/full', 'w');
  const child = spawn(
    process.execPath,
    [MAOS_BIN, 'serve', '--config', config, '--port', String(port), '--data-dir', join(dir, 'data')],
    { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' }, stdio: ['ignore', full, 'pipe'] },
  );
  closeSync(full);
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.status === 200,
    60_000,
    'the server to answer',
  );
  // Requests after the failed lines are still served.
  for (let request = 0; request < 3; request += 1) {
    const listed = await fetch(`${url}/v1/sessions`);
    assert.equal(listed.status, 200, stderr);
  }
  assert.equal(child.exitCode, null, stderr);
  const notes = stderr.match(/^MAOS cannot write its log to stdout \(ENOSPC\).*$/gm) ?? [];
  assert.deepEqual(notes, [
    'MAOS cannot write its log to stdout (ENOSPC): its lines are lost until it can; serving on',
  ]);
  child.kill('SIGTERM');
  assert.deepEqual(await exited, { code: 0, signal: null }, stderr);
  assert.doesNotMatch(stderr, /^error /m);
});
