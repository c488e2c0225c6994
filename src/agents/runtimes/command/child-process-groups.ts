// Finding runner processes in Linux's /proc: the process groups of this server's runners, to stop
// them when it exits without its graceful shutdown (a second SIGTERM/SIGINT), and every process a
// run started (by the variable all of them inherit), to stop what a dead server's runner left.
import { readdirSync, readFileSync } from 'node:fs';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';

/** The variable the command runtime gives every run, with an id of that run alone. */
const RUN_ID_VARIABLE = 'MAOS_RUN_ID';
/** A run id as the command runtime makes them (store/ids.ts); anything else is never looked for. */
const RUN_ID_PATTERN = /^[0-9A-Za-z_-]{8,64}$/;
/**
 * Looks for a run's processes this many times: one that left the group may start another session
 * between a look and the kill; a third look that still finds some gives up until the next sweep.
 */
const RUN_PROCESS_LOOKS = 3;

/** What /proc/<pid>/stat tells of a process. */
interface ProcessStat {
  /** R, S, D, Z (zombie: exited, not reaped yet), … */
  state: string;
  ppid: number;
  pgrp: number;
  /** Field 22: clock ticks from boot to the process's start. */
  startTime: string;
}

/** Reads /proc/<pid>/stat; undefined when the process is gone or there is no /proc. */
export function readProcessStat(pid: number | 'self'): ProcessStat | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return parseProcessStat(stat);
}

function parseProcessStat(stat: string): ProcessStat {
  // After the command name (which may hold spaces and parentheses): state, ppid, pgrp, …
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    state: fields[0] ?? '',
    ppid: Number(fields[1]),
    pgrp: Number(fields[2]),
    startTime: fields[19] ?? '',
  };
}

function listPids(): number[] {
  try {
    return pidsOf(readdirSync('/proc'));
  } catch {
    return [];
  }
}

function pidsOf(procEntries: readonly string[]): number[] {
  return procEntries.filter((name) => /^\d+$/.test(name)).map(Number);
}

/**
 * Kills (SIGKILL) the whole process group of every direct child of `parentPid` that leads its own
 * group, i.e. every detached runner, and what its run started outside that group (the processes
 * that carry its MAOS_RUN_ID: killRunLeftovers); returns how many runners it killed. Reads Linux's
 * /proc; where there is none, kills nothing (the next start on SQLite still stops recorded orphans).
 */
export function killChildProcessGroups(parentPid: number = process.pid): number {
  let killed = 0;
  for (const pid of listPids()) {
    const stat = readProcessStat(pid);
    if (stat === undefined || stat.ppid !== parentPid || stat.pgrp !== pid || stat.state === 'Z') continue;
    const runId = readRunId(pid);
    if (killGroups([pid])) killed += 1;
    if (runId !== undefined) killRunLeftovers(runId, stat.startTime);
  }
  return killed;
}

/** The MAOS_RUN_ID in the environment of process `pid`, if it has one. */
function readRunId(pid: number): string | undefined {
  try {
    const prefix = `${RUN_ID_VARIABLE}=`;
    const entries = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
    return entries.find((entry) => entry.startsWith(prefix))?.slice(prefix.length);
  } catch {
    return undefined;
  }
}

/** SIGKILLs each process group; returns whether any was still there. */
export function killGroups(groups: readonly number[]): boolean {
  let signalled = false;
  for (const group of groups) {
    try {
      process.kill(-group, 'SIGKILL');
      signalled = true;
    } catch {
      // Gone meanwhile.
    }
  }
  return signalled;
}

/**
 * Kills (SIGKILL) the groups of the processes that carry run `runId`'s MAOS_RUN_ID and started no
 * earlier than its runner (`startTime`): those that left the runner's group (setsid) or stayed in
 * it after the runner ended (findRunProcessGroups). Returns whether it found any. Blocks while it
 * reads /proc: for the sweeps and a forced exit; a runner's exit uses killRunLeftoversInBackground.
 */
export function killRunLeftovers(runId: string, startTime: string | null): boolean {
  if (!RUN_ID_PATTERN.test(runId) || startTime === null) return false;
  let found = false;
  for (let look = 0; look < RUN_PROCESS_LOOKS; look += 1) {
    const groups = findRunProcessGroups(runId, startTime);
    if (groups.length === 0) break;
    found = true;
    killGroups(groups);
  }
  return found;
}

/**
 * killRunLeftovers without blocking the event loop, for every runner's exit: reading the stat of
 * every process in /proc takes milliseconds on a host with a few hundred processes (about 13 ms for
 * 150 measured), which would stall every request and stream of the server at each step.
 */
export async function killRunLeftoversInBackground(
  runId: string,
  startTime: string | null,
): Promise<boolean> {
  if (!RUN_ID_PATTERN.test(runId) || startTime === null) return false;
  let found = false;
  for (let look = 0; look < RUN_PROCESS_LOOKS; look += 1) {
    const groups = await findRunProcessGroupsInBackground(runId, startTime);
    if (groups.length === 0) break;
    found = true;
    killGroups(groups);
  }
  return found;
}

/**
 * The process groups of every process that carries `MAOS_RUN_ID=<runId>` in its environment and
 * started no earlier than `notBefore` (the runner's start time, as /proc/<pid>/stat gives it): the
 * processes the run started, also those that left the runner's group (setsid) or outlived the
 * runner, unless they replaced their environment. The id is random and given to no other run, so a
 * recycled pid or group id never matches. This process's own group is never returned; nothing is
 * where /proc cannot be read (another user's processes, which cannot be signalled either).
 */
export function findRunProcessGroups(runId: string, notBefore: string): number[] {
  const run = runProcessMatcher(runId, notBefore);
  for (const pid of listPids()) {
    const stat = readProcessStat(pid);
    if (!run.mayBelong(stat)) continue;
    let environ: Buffer;
    try {
      environ = readFileSync(`/proc/${pid}/environ`);
    } catch {
      continue;
    }
    run.add(stat, environ);
  }
  return run.groups();
}

/**
 * Processes read between two turns of the event loop by findRunProcessGroupsInBackground: a slice
 * takes well under a millisecond (a /proc file is read from memory, in microseconds).
 */
const PROCESSES_PER_SLICE = 16;

/**
 * findRunProcessGroups without holding the event loop: /proc is read in slices of
 * PROCESSES_PER_SLICE processes, with a turn of the event loop between two. Read synchronously, as
 * procfs is memory: through the thread pool (four round trips a file) the same scan took about twice
 * the main thread's time, in callbacks.
 */
async function findRunProcessGroupsInBackground(runId: string, notBefore: string): Promise<number[]> {
  const run = runProcessMatcher(runId, notBefore);
  const pids = listPids();
  for (let next = 0; next < pids.length; next += PROCESSES_PER_SLICE) {
    if (next > 0) await yieldToEventLoop();
    for (const pid of pids.slice(next, next + PROCESSES_PER_SLICE)) {
      const stat = readProcessStat(pid);
      if (!run.mayBelong(stat)) continue;
      let environ: Buffer;
      try {
        environ = readFileSync(`/proc/${pid}/environ`);
      } catch {
        continue;
      }
      run.add(stat, environ);
    }
  }
  return run.groups();
}

/** The rule findRunProcessGroups applies to each process, whichever way /proc is read. */
function runProcessMatcher(runId: string, notBefore: string) {
  const entry = Buffer.from(`${RUN_ID_VARIABLE}=${runId}\0`);
  const inner = Buffer.concat([Buffer.from([0]), entry]);
  const own = readProcessStat('self')?.pgrp;
  const found = new Set<number>();
  return {
    /** Whether the process may be the run's: its environment is read only then. */
    mayBelong(stat: ProcessStat | undefined): stat is ProcessStat {
      // Group 0 (kernel threads) and 1 would be no group to signal: kill(-1) reaches every process.
      if (stat === undefined || stat.state === 'Z' || stat.pgrp <= 1 || stat.pgrp === own) return false;
      return !found.has(stat.pgrp) && Number(stat.startTime) >= Number(notBefore);
    },
    add(stat: ProcessStat, environ: Buffer): void {
      // A whole entry: the first one, or one after the NUL that ends the one before.
      if (environ.indexOf(entry) === 0 || environ.includes(inner)) found.add(stat.pgrp);
    },
    groups: (): number[] => [...found],
  };
}
