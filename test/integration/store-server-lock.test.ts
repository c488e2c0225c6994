// One server per SQLite database: a second server on the same data directory is refused at start
// with CONFLICT (it would run a second engine whose wake-ups and event streams the first never sees);
// once the first has stopped, a new one starts. A `maos serve` process refuses with exit code 6.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { recordRun } from '../../src/agents/runtimes/command/run-records.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { runMaos } from '../fixtures/cli.ts';
import { startTestServer } from '../fixtures/server.ts';

test('a second server on the same SQLite data directory is refused until the first stops', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-server-lock-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const first = await startTestServer({ dataDir });
  let firstStopped = false;
  t.after(async () => {
    if (!firstStopped) await first.close();
  });
  // Should it start after all, it is closed again so that the test fails instead of hanging.
  const second = await startTestServer({ dataDir }).then(
    async (server) => {
      await server.close();
      return undefined;
    },
    (error: unknown) => error,
  );
  assert.ok(second instanceof AppError, `a second server started: ${String(second)}`);
  assert.equal(second.code, 'CONFLICT');
  assert.match(second.message, /Another MAOS server is running on .*maos\.db/);
  // A `maos serve` process on the same directory: exit 6, the reason on stderr.
  const refused = await runMaos(['serve', '--port', '0', '--data-dir', dataDir], {
    env: { MAOS_AUTH__MODE: 'none' },
    timeoutMs: 30_000,
  });
  assert.equal(refused.code, 6, refused.stderr);
  assert.match(refused.stderr, /Another MAOS server is running/);
  await first.close();
  firstStopped = true;
  const next = await startTestServer({ dataDir });
  await next.close();
});

test('a server starting on a data directory stops the runner processes a dead server left running', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-orphans-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  // What a server killed mid-run leaves: a runner's process group, still recorded.
  const orphan = spawn('sh', ['-c', 'exec sleep 30'], { detached: true, stdio: 'ignore' });
  orphan.unref();
  const pid = orphan.pid!;
  t.after(() => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {}
  });
  recordRun(dataDir, 'task-from-before', pid);
  const server = await startTestServer({ dataDir });
  t.after(() => server.close());
  let alive = true;
  for (let i = 0; i < 100 && alive; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
  }
  assert.equal(alive, false, 'the orphaned runner was stopped at start');
});
