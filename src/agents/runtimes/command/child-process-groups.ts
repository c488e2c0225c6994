// Stops the runner processes of this server when it exits without its graceful shutdown (a second
// SIGTERM/SIGINT): runners lead process groups of their own, which would otherwise keep running.
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Kills (SIGKILL) the whole process group of every direct child of `parentPid` that leads its own
 * group, i.e. every detached runner, and returns how many it killed. Reads Linux's /proc; where
 * there is none, kills nothing (the next start on SQLite still stops recorded orphans).
 */
export function killChildProcessGroups(parentPid: number = process.pid): number {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return 0;
  }
  let killed = 0;
  for (const name of entries) {
    const pid = Number(name);
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // After the command name (which may hold spaces and parentheses): state, ppid, pgrp, …
    const [state, ppid, pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(ppid) !== parentPid || Number(pgrp) !== pid || state === 'Z') continue;
    try {
      process.kill(-pid, 'SIGKILL');
      killed += 1;
    } catch {
      // Already gone.
    }
  }
  return killed;
}
