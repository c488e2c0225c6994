// The forced exit (a second SIGTERM): every runner's group is killed, and what a runner started
// outside its group (a daemon, setsid) goes with it, found by the run's MAOS_RUN_ID.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { isAlive, waitUntilGone } from '../../../../test/fixtures/processes.ts';
import { waitFor } from '../../../../test/fixtures/wait-for.ts';
import { newId } from '../../../store/ids.ts';
import {
  findRunProcessGroups,
  findRunProcessGroupsInBackground,
  killChildProcessGroups,
  readProcessStat,
} from './child-process-groups.ts';

/** The process group of `pid` (/proc/<pid>/stat). */
function groupOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

test("a forced exit kills each runner's group and the daemons its run started", async (t) => {
  // A runner as the command runtime starts it: a child of this process, leading its own group.
  const runner = spawn('sh', ['-c', 'setsid sleep 30 & echo $!; exec sleep 30'], {
    detached: true,
    stdio: ['ignore', 'pipe', 'ignore'],
    env: { ...process.env, MAOS_RUN_ID: newId() },
  });
  const daemon = await new Promise<number>((resolve) => {
    let out = '';
    runner.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
  });
  t.after(() => {
    for (const pid of [runner.pid as number, daemon]) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  });
  await waitFor(() => groupOf(daemon) === daemon, 5000, 'the daemon in a session of its own');
  // Not a runner: a process of another run, in a session of its own, not a child of this process.
  const other = spawn('sh', ['-c', 'setsid sleep 30 & echo $!'], {
    stdio: ['ignore', 'pipe', 'ignore'],
    env: { ...process.env, MAOS_RUN_ID: newId() },
  });
  const unrelated = await new Promise<number>((resolve) => {
    other.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
  });
  t.after(() => {
    if (isAlive(unrelated)) process.kill(unrelated, 'SIGKILL');
  });

  assert.equal(killChildProcessGroups(), 1);
  assert.equal(await waitUntilGone(runner.pid as number), true, 'the runner was left running');
  assert.equal(await waitUntilGone(daemon), true, "the runner's daemon was left running");
  assert.equal(isAlive(unrelated), true);
});

test('a process caught in the middle of an exec, when its environment reads empty, is still found', {
  skip: process.platform !== 'linux' && 'needs Linux /proc',
}, async (t) => {
  // A daemon that execs without end: between the old program's memory going and the new program's
  // environment being laid out, /proc/<pid>/environ reads empty (some in a hundred reads). A scan
  // that took that for "not the run's" missed it; a few hundred scans all find it.
  const runId = newId();
  const program = 'exec sh -c "$0" "$0"';
  const daemon = spawn('sh', ['-c', program, program], {
    detached: true,
    stdio: 'ignore',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', MAOS_RUN_ID: runId },
  });
  const pid = daemon.pid as number;
  t.after(() => {
    if (isAlive(pid)) process.kill(-pid, 'SIGKILL');
  });
  const startTime = readProcessStat(pid)?.startTime as string;
  assert.ok(startTime);
  const scans = 300;
  let missed = 0;
  let missedInBackground = 0;
  for (let scan = 0; scan < scans; scan += 1) {
    if (!findRunProcessGroups(runId, startTime).includes(pid)) missed += 1;
    if (!(await findRunProcessGroupsInBackground(runId, startTime)).includes(pid)) missedInBackground += 1;
  }
  assert.equal(isAlive(pid), true, 'the daemon ran throughout');
  assert.deepEqual({ missed, missedInBackground }, { missed: 0, missedInBackground: 0 });
});
