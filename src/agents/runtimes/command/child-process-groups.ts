// Finding runner processes in Linux's /proc: the process groups of this server's runners, to stop
// them when it exits without its graceful shutdown (a second SIGTERM/SIGINT), and every process a
// run started (by the variable all of them inherit), to stop what a dead server's runner left.
import { readdirSync, readFileSync } from 'node:fs';

/** The variable the command runtime gives every run, with an id of that run alone. */
const RUN_ID_VARIABLE = 'MAOS_RUN_ID';

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
 * group, i.e. every detached runner, and returns how many it killed. Reads Linux's /proc; where
 * there is none, kills nothing (the next start on SQLite still stops recorded orphans).
 */
export function killChildProcessGroups(parentPid: number = process.pid): number {
  let killed = 0;
  for (const pid of listPids()) {
    const stat = readProcessStat(pid);
    if (stat === undefined || stat.ppid !== parentPid || stat.pgrp !== pid || stat.state === 'Z') continue;
    try {
      process.kill(-pid, 'SIGKILL');
      killed += 1;
    } catch {
      // Already gone.
    }
  }
  return killed;
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
