// One server per SQLite database: a second server on the same data directory is refused at start
// with CONFLICT (it would run a second engine whose wake-ups and event streams the first never sees);
// once the first has stopped, a new one starts. A `maos serve` process refuses with exit code 6.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { recordRun } from '../../src/agents/runtimes/command/run-records.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { runMaos } from '../fixtures/cli.ts';
import { scrapeSample } from '../fixtures/metrics-scrape.ts';
import { spawnDetachedGroup, waitUntilGone } from '../fixtures/processes.ts';
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
  const orphan = spawnDetachedGroup('exec sleep 30');
  t.after(orphan.kill);
  recordRun(dataDir, 'task-from-before', orphan.pid);
  // And the HOME of a runner that had exited, its record forgotten, when the server died.
  const stray = join(dataDir, 'homes', 'maos-home-AbC123');
  mkdirSync(join(stray, '.npm'), { recursive: true });
  const server = await startTestServer({ dataDir });
  t.after(() => server.close());
  assert.equal(await waitUntilGone(orphan.pid), true, 'the orphaned runner was stopped at start');
  assert.equal(existsSync(stray), false, 'the stray HOME was removed at start');
  assert.equal(await scrapeSample(server.url, 'maos_orphaned_runners_killed_total'), 1);
});
