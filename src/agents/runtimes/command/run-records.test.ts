// Orphaned runner processes: a recorded process group that is still alive is killed at the next
// start; a record whose process is gone, or whose pid now belongs to another process, kills nothing.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isAlive, spawnDetachedGroup, waitUntilGone } from '../../../../test/fixtures/processes.ts';
import { killOrphanedRuns, recordRun, removeUnrecordedHomes, taskHomesDir } from './run-records.ts';

test('a recorded group still running is killed at the next start; stale records kill nothing', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-runs-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  // An orphan: its own group, as the command runtime starts runners, with a grandchild in it.
  const orphan = spawnDetachedGroup('sleep 30 & exec sleep 30');
  t.after(orphan.kill);
  const { pid } = orphan;
  recordRun(dataDir, 'task-1', pid);
  // A record whose process is gone, and one whose pid is alive but another process (this one).
  writeFileSync(join(dataDir, 'runs', 'gone.json'), JSON.stringify({ pid: 2_000_000_000, startTime: '1' }));
  writeFileSync(join(dataDir, 'runs', 'reused.json'), JSON.stringify({ pid: process.pid, startTime: '1' }));
  // A run that ended forgets its record.
  const forget = recordRun(dataDir, 'task-2', process.pid);
  forget();
  assert.equal(existsSync(join(dataDir, 'runs', 'task-2.json')), false);

  assert.equal(killOrphanedRuns(dataDir), 1);
  assert.equal(await waitUntilGone(pid), true, 'the orphan group was killed');
  assert.equal(isAlive(process.pid), true);
  assert.deepEqual(
    ['task-1', 'gone', 'reused'].filter((name) => existsSync(join(dataDir, 'runs', `${name}.json`))),
    [],
  );
  assert.equal(killOrphanedRuns(dataDir), 0);
});

test("a crashed server's runs lose their HOME at the next start; other directories stay", (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-runs-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  // A run's HOME as the command runtime makes it, with what a tool left there.
  const home = mkdtempSync(join(dataDir, 'maos-home-'));
  mkdirSync(join(home, '.npm', '_cacache'), { recursive: true });
  writeFileSync(join(home, '.npm', '_cacache', 'entry'), 'x');
  recordRun(dataDir, 'task-1-1', 2_000_000_000, home);
  // A record naming a directory that is no task HOME (edited, or another version's) removes nothing.
  const other = mkdtempSync(join(dataDir, 'keep-'));
  writeFileSync(
    join(dataDir, 'runs', 'odd.json'),
    JSON.stringify({ pid: 2_000_000_000, startTime: '1', home: other }),
  );
  killOrphanedRuns(dataDir);
  assert.equal(existsSync(home), false, 'the HOME of the orphaned run is removed');
  assert.equal(existsSync(other), true);
});

test('HOMEs under <dataDir>/homes that no run record names go at the next start; recorded ones stay', (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-runs-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const homes = taskHomesDir(dataDir);
  mkdirSync(homes, { recursive: true, mode: 0o700 });
  // The server died after the runner exited (record forgotten) but before it removed the HOME.
  const stray = mkdtempSync(join(homes, 'maos-home-'));
  mkdirSync(join(stray, '.cache', 'pip'), { recursive: true });
  writeFileSync(join(stray, '.cache', 'pip', 'wheel'), 'x');
  // A live run: recorded with its HOME (this process stands for its runner).
  const live = mkdtempSync(join(homes, 'maos-home-'));
  const forget = recordRun(dataDir, 'task-live-1', process.pid, live);
  // Not a task HOME: never removed.
  const other = join(homes, 'notes');
  mkdirSync(other);

  assert.equal(removeUnrecordedHomes(dataDir), 1);
  assert.equal(existsSync(stray), false, 'the stray HOME is removed');
  assert.equal(existsSync(live), true, "a recorded run's HOME stays");
  assert.equal(existsSync(other), true);

  // At start-up (killOrphanedRuns, before any run of the new server) the same happens.
  forget();
  const left = mkdtempSync(join(homes, 'maos-home-'));
  assert.equal(killOrphanedRuns(dataDir), 0);
  assert.equal(existsSync(left), false);
  assert.equal(existsSync(live), false, 'no record names it any more');
  assert.equal(existsSync(other), true);
  // No homes directory (no runner ran yet): nothing to do.
  rmSync(homes, { recursive: true });
  assert.equal(removeUnrecordedHomes(dataDir), 0);
});
