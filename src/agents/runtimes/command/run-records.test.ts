// Orphaned runner processes: a recorded process group that is still alive is killed at the next
// start; a record whose process is gone, or whose pid now belongs to another process, kills nothing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { killOrphanedRuns, recordRun } from './run-records.ts';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('a recorded group still running is killed at the next start; stale records kill nothing', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-runs-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  // An orphan: its own group, as the command runtime starts runners, with a grandchild in it.
  const orphan = spawn('sh', ['-c', 'sleep 30 & exec sleep 30'], { detached: true, stdio: 'ignore' });
  orphan.unref();
  const pid = orphan.pid!;
  t.after(() => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {}
  });
  recordRun(dataDir, 'task-1', pid);
  // A record whose process is gone, and one whose pid is alive but another process (this one).
  writeFileSync(join(dataDir, 'runs', 'gone.json'), JSON.stringify({ pid: 2_000_000_000, startTime: '1' }));
  writeFileSync(join(dataDir, 'runs', 'reused.json'), JSON.stringify({ pid: process.pid, startTime: '1' }));
  // A run that ended forgets its record.
  const forget = recordRun(dataDir, 'task-2', process.pid);
  forget();
  assert.equal(existsSync(join(dataDir, 'runs', 'task-2.json')), false);

  assert.equal(killOrphanedRuns(dataDir), 1);
  for (let i = 0; i < 50 && isAlive(pid); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(isAlive(pid), false, 'the orphan group was killed');
  assert.equal(isAlive(process.pid), true);
  assert.deepEqual(
    ['task-1', 'gone', 'reused'].filter((name) => existsSync(join(dataDir, 'runs', `${name}.json`))),
    [],
  );
  assert.equal(killOrphanedRuns(dataDir), 0);
});
