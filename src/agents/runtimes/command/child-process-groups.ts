// Finding runner processes in Linux's /proc: the process groups of this server's runners, to stop
// them when it exits without its graceful shutdown (a second SIGTERM/SIGINT), and every process a
// run started (by the variable all of them inherit), to stop what a dead server's runner left.
import { readdirSync, readFileSync } from 'node:fs';

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
    return readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .map(Number);
  } catch {
    return [];
  }
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
 * it after the runner ended (findRunProcessGroups). Returns whether it found any.
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
 * The process groups of every process that carries `MAOS_RUN_ID=<runId>` in its environment and
 * started no earlier than `notBefore` (the runner's start time, as /proc/<pid>/stat gives it): the
 * processes the run started, also those that left the runner's group (setsid) or outlived the
 * runner, unless they replaced their environment. The id is random and given to no other run, so a
 * recycled pid or group id never matches. This process's own group is never returned; nothing is
 * where /proc cannot be read (another user's processes, which cannot be signalled either).
 */
export function findRunProcessGroups(runId: string, notBefore: string): number[] {
  const entry = Buffer.from(`${RUN_ID_VARIABLE}=${runId}\0`);
  const inner = Buffer.concat([Buffer.from([0]), entry]);
  const own = readProcessStat('self')?.pgrp;
  const groups = new Set<number>();
  for (const pid of listPids()) {
    const stat = readProcessStat(pid);
    // Group 0 (kernel threads) and 1 would be no group to signal: kill(-1) reaches every process.
    if (stat === undefined || stat.state === 'Z' || stat.pgrp <= 1 || stat.pgrp === own) continue;
    if (groups.has(stat.pgrp) || !(Number(stat.startTime) >= Number(notBefore))) continue;
    let environ: Buffer;
    try {
      environ = readFileSync(`/proc/${pid}/environ`);
    } catch {
      continue;
    }
    // A whole entry: the first one, or one after the NUL that ends the one before.
    if (environ.indexOf(entry) === 0 || environ.includes(inner)) groups.add(stat.pgrp);
  }
  return [...groups];
}
