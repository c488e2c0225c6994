// A SIGTERM that reaches `maos serve` as its start ends (after the start's own signal handling has
// checked for one, before the shutdown handling took over) stops the server gracefully, exit 0:
// it was lost before, and the server went on serving until it was killed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PRELOAD = fileURLToPath(new URL('../fixtures/sigterm-at-server-start.ts', import.meta.url));

test('a SIGTERM that arrives as the server finishes starting stops it gracefully (exit 0)', async (t) => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-serve-sigterm-')));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ auth: { mode: 'none' }, logLevel: 'info' }));
  const child = spawn(
    process.execPath,
    [
      '--import',
      PRELOAD,
      'bin/maos.js',
      'serve',
      '--config',
      config,
      '--port',
      '0',
      '--data-dir',
      join(dir, 'data'),
    ],
    { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(() => child.kill('SIGKILL'));

  // The banner's last line comes after the handover; the signal sent before it is due at the next
  // turn of the server's event loop, so by the time a request of ours is read, it was handled.
  for (let i = 0; i < 900 && !/API docs:/.test(stderr) && child.exitCode === null; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const url = /MAOS listening on (http:\/\/\S+)/.exec(stderr)?.[1];
  assert.ok(url, `banner printed:\n${stdout}\n${stderr}`);
  const ready = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(10_000) }).then(
    (response) => response.status,
    () => 'closed',
  );
  assert.notEqual(ready, 200, `the server still serves as ready after the SIGTERM:\n${stdout}`);
  assert.equal(await exited, 0, stderr);
  assert.match(stdout, /"signal":"SIGTERM".*"message":"shutting down"/);
  assert.match(stdout, /"message":"stopped"/);
});
