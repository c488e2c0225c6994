// Finding runner processes in Linux's /proc: the process groups of this server's runners, to stop
// them when it exits without its graceful shutdown (a second SIGTERM/SIGINT), and every process a
// run started (by the variable all of them inherit), to stop what a dead server's runner left.
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep, setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Logger } from '../../../observability/logger.ts';

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

/**
 * Ends the process as SIGHUP's default action does (its terminal closed), once the runners' process
 * groups, which that action would not reach, are killed (killChildProcessGroups): `listener` is the
 * SIGHUP listener calling this, removed so that the SIGHUP raised again takes the default action.
 */
export function hangUpAfterKillingRunners(listener: () => void, logger: Pick<Logger, 'warn'>): void {
  const runners = killChildProcessGroups();
  logger.warn({ signal: 'SIGHUP', runners }, 'SIGHUP: runner processes killed, exiting');
  process.off('SIGHUP', listener);
  process.kill(process.pid, 'SIGHUP');
}

/**
 * The MAOS_RUN_ID in the environment of process `pid`, if it has one; an empty environment (a runner
 * caught in the middle of an exec) is read again after the waits of EMPTY_ENVIRON_WAITS_MS.
 */
function readRunId(pid: number): string | undefined {
  let environ = readEnviron(pid);
  for (const waitMs of EMPTY_ENVIRON_WAITS_MS) {
    if (environ?.length !== 0) break;
    blockFor(waitMs);
    environ = readEnviron(pid);
  }
  const prefix = `${RUN_ID_VARIABLE}=`;
  const entries = (environ ?? Buffer.alloc(0)).toString('latin1').split('\0');
  return entries.find((entry) => entry.startsWith(prefix))?.slice(prefix.length);
}

/** Blocks the thread for `ms` milliseconds (the blocking scans' waits). */
function blockFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
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
 * where /proc cannot be read (another user's processes, which cannot be signalled either). Blocks
 * while it reads /proc, and for the few milliseconds an empty environment is waited on
 * (scanRunProcesses).
 */
export function findRunProcessGroups(runId: string, notBefore: string): number[] {
  const scan = scanRunProcesses(runId, notBefore);
  for (let step = scan.next(); ; step = scan.next()) {
    if (step.done) return step.value;
    if (step.value.waitMs > 0) blockFor(step.value.waitMs);
  }
}

/**
 * Processes read between two turns of the event loop by findRunProcessGroupsInBackground: a slice
 * takes well under a millisecond (a /proc file is read from memory, in microseconds).
 */
const PROCESSES_PER_SLICE = 16;

/**
 * findRunProcessGroups without holding the event loop: /proc is read in slices of
 * PROCESSES_PER_SLICE processes, with a turn of the event loop between two, and an empty environment
 * is waited on with a timer. Read synchronously, as procfs is memory: through the thread pool (four
 * round trips a file) the same scan took about twice the main thread's time, in callbacks.
 */
export async function findRunProcessGroupsInBackground(runId: string, notBefore: string): Promise<number[]> {
  const scan = scanRunProcesses(runId, notBefore);
  for (let step = scan.next(); ; step = scan.next()) {
    if (step.done) return step.value;
    if (step.value.waitMs > 0) await sleep(step.value.waitMs);
    else await yieldToEventLoop();
  }
}

/**
 * How long a process whose environment reads empty is waited on before its environment is read
 * again, each time: in the middle of an exec (between the old program's memory going and the new
 * one's environment being laid out) and while it exits, a process shows none, for microseconds or,
 * descheduled there, milliseconds. Taken for "not the run's", a daemon exec'ing as its runner
 * exits was missed and outlived the run. 63 ms at most for a process that really has an empty
 * environment (`env -i`), started after the runner.
 */
const EMPTY_ENVIRON_WAITS_MS = [1, 2, 4, 8, 16, 32] as const;

/** What a scan asks of its driver: a turn of the event loop (waitMs 0), or a wait. */
interface ScanPause {
  waitMs: number;
}

/**
 * The one scan behind findRunProcessGroups and findRunProcessGroupsInBackground, which differ only
 * in how they pause: after every PROCESSES_PER_SLICE processes (a turn of the event loop, which the
 * blocking one skips) and before reading an empty environment again.
 */
function* scanRunProcesses(runId: string, notBefore: string): Generator<ScanPause, number[]> {
  const run = runProcessMatcher(runId, notBefore);
  const pids = listPids();
  for (const [index, pid] of pids.entries()) {
    if (index > 0 && index % PROCESSES_PER_SLICE === 0) yield { waitMs: 0 };
    let stat = readProcessStat(pid);
    if (!run.mayBelong(stat)) continue;
    let environ = readEnviron(pid);
    for (const waitMs of EMPTY_ENVIRON_WAITS_MS) {
      if (environ?.length !== 0) break;
      yield { waitMs };
      // Still the same process (not exited, its pid not given to another), still maybe the run's.
      const now = readProcessStat(pid);
      if (!run.mayBelong(now) || now.startTime !== stat.startTime) {
        environ = undefined;
        break;
      }
      stat = now;
      environ = readEnviron(pid);
    }
    if (environ !== undefined) run.add(stat, environ);
  }
  return run.groups();
}

/** /proc/<pid>/environ, or undefined when it cannot be read (gone, another user's). */
function readEnviron(pid: number): Buffer | undefined {
  try {
    return readFileSync(`/proc/${pid}/environ`);
  } catch {
    return undefined;
  }
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
