// A SIGTERM that reaches `maos serve` as its start ends (after the start's own signal handling has
// checked for one, before the shutdown handling took over) stops the server gracefully, exit 0:
// it was lost before, and the server went on serving until it was killed.
import assert from 'node:assert/strict';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runServeCommand, waitForBanner } from '../fixtures/serve-command.ts';

const PRELOAD = fileURLToPath(new URL('../fixtures/sigterm-at-server-start.ts', import.meta.url));

test('a SIGTERM that arrives as the server finishes starting stops it gracefully (exit 0)', async (t) => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-serve-sigterm-')));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ auth: { mode: 'none' }, logLevel: 'info' }));
  const serve = runServeCommand(
    ['--config', config, '--port', '0', '--data-dir', join(dir, 'data')],
    ['--import', PRELOAD],
  );
  t.after(() => serve.child.kill('SIGKILL'));

  // The banner's last line comes after the handover; the signal sent before it is due at the next
  // turn of the server's event loop, so by the time a request of ours is read, it was handled.
  const url = await waitForBanner(serve, (stderr) => /API docs:/.test(stderr));
  assert.ok(url, `banner printed:\n${serve.output().stdout}\n${serve.output().stderr}`);
  const ready = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(10_000) }).then(
    (response) => response.status,
    () => 'closed',
  );
  assert.notEqual(
    ready,
    200,
    `the server still serves as ready after the SIGTERM:\n${serve.output().stdout}`,
  );
  assert.equal(await serve.exited, 0, serve.output().stderr);
  const { stdout } = serve.output();
  assert.match(stdout, /"signal":"SIGTERM".*"message":"shutting down"/);
  assert.match(stdout, /"message":"stopped"/);
});
