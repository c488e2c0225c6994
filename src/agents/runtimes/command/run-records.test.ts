// Orphaned runner processes: a recorded process group that is still alive is killed at the next
// start; a record whose process is gone, or whose pid now belongs to another process, kills nothing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { isAlive, spawnDetachedGroup, waitUntilGone } from '../../../../test/fixtures/processes.ts';
import { waitFor } from '../../../../test/fixtures/wait-for.ts';
import { newId } from '../../../store/ids.ts';
import {
  killOrphanedRuns,
  recordRun,
  removeUnrecordedRunDirs,
  runTempsDir,
  taskHomesDir,
} from './run-records.ts';

/**
 * Starts `sh -c script` as a runner starts (its own group, with MAOS_RUN_ID=runId); the script
 * prints the pid of a process it started. Returns the runner's pid, that pid, and the runner's exit.
 */
async function startRun(
  t: TestContext,
  script: string,
  runId: string,
): Promise<{ pid: number; started: number; exited: Promise<void> }> {
  const child = spawn('sh', ['-c', script], {
    detached: true,
    stdio: ['ignore', 'pipe', 'ignore'],
    env: { ...process.env, MAOS_RUN_ID: runId },
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const line = await new Promise<string>((resolve) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
  });
  const started = Number(line);
  t.after(() => {
    for (const pid of [child.pid as number, started]) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  });
  return { pid: child.pid as number, started, exited };
}

/** The process group of `pid` (/proc/<pid>/stat). */
function groupOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

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

test("a crashed server's runs lose their temporary directories at the next start, recorded or not; other names stay", (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-runs-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const temps = runTempsDir(dataDir);
  mkdirSync(temps, { recursive: true, mode: 0o700 });
  // A run the server died during (recorded), and one it died right after (record forgotten).
  const recorded = mkdtempSync(join(temps, 'maos-tmp-'));
  writeFileSync(join(recorded, 'partial.o'), 'x');
  recordRun(dataDir, 'task-1-1', 2_000_000_000, undefined, undefined, recorded);
  const stray = mkdtempSync(join(temps, 'maos-tmp-'));
  writeFileSync(join(stray, 'sess.lock'), 'x');
  // Not a run's temporary directory: never removed, even when a record names it.
  const other = join(temps, 'notes');
  mkdirSync(other);
  writeFileSync(
    join(dataDir, 'runs', 'odd.json'),
    JSON.stringify({ pid: 2_000_000_000, startTime: '1', tmp: other }),
  );
  killOrphanedRuns(dataDir);
  assert.equal(existsSync(recorded), false, 'the recorded run loses its temporary directory');
  assert.equal(existsSync(stray), false, 'so does the run no record names any more');
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

  assert.equal(removeUnrecordedRunDirs(dataDir), 1);
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
  assert.equal(removeUnrecordedRunDirs(dataDir), 0);
});

test('a runner that died after its server: the processes it left in its group are killed at the next start', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-runs-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const runId = newId();
  const run = await startRun(t, 'sleep 30 & echo $!; exec sleep 30', runId);
  recordRun(dataDir, 'task-1-1', run.pid, undefined, runId);
  // The server is gone; then the runner dies too (alone), and its child stays in the runner's group.
  process.kill(run.pid, 'SIGKILL');
  await run.exited;
  assert.equal(isAlive(run.pid), false);
  assert.equal(groupOf(run.started), run.pid);

  assert.equal(killOrphanedRuns(dataDir), 1);
  assert.equal(await waitUntilGone(run.started), true, "the runner's child was left running");
});

test("a process that left the runner's group (setsid) is killed with the run; other runs' processes stay", async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-runs-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const runId = newId();
  const run = await startRun(t, 'setsid sleep 30 & echo $!; exec sleep 30', runId);
  await waitFor(() => groupOf(run.started) === run.started, 5000, 'the child in a session of its own');
  recordRun(dataDir, 'task-1-1', run.pid, undefined, runId);
  // Another run (a live one, or one whose record is elsewhere), with a session of its own too.
  const other = await startRun(t, 'setsid sleep 30 & echo $!; exec sleep 30', newId());
  await waitFor(() => groupOf(other.started) === other.started, 5000, 'the other child in its session');

  assert.equal(killOrphanedRuns(dataDir), 1);
  assert.equal(await waitUntilGone(run.pid), true, 'the runner was left running');
  assert.equal(
    await waitUntilGone(run.started),
    true,
    'the process in a session of its own was left running',
  );
  assert.equal(isAlive(other.pid), true);
  assert.equal(isAlive(other.started), true);
});
