// Runner processes left behind by a server that died without stopping them (kill -9, OOM kill): a
// runner runs in its own process group, which outlives the server. Each running group is recorded
// under `<dataDir>/runs/`, the record removed when the run ends; at the next start the groups still
// recorded are orphans (one server per data directory: store/server-lock.ts) and are killed before
// the engine re-runs their tasks, so no command runs twice at once. A record also holds the process
// start time (Linux /proc), so a recycled pid is never mistaken for the orphan.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

interface RunRecord {
  pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks since boot), or null where /proc is missing. */
  startTime: string | null;
}

function runsDir(dataDir: string): string {
  return join(resolve(dataDir), 'runs');
}

/** The start time of process `pid` (Linux), or null when it cannot be read (gone, or no /proc). */
function readStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from its closing one.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

/** Records the process group `pid` of a run; returns the function that forgets it. */
export function recordRun(dataDir: string, runId: string, pid: number): () => void {
  const dir = runsDir(dataDir);
  const file = join(dir, `${runId}.json`);
  try {
    mkdirSync(dir, { recursive: true });
    const record: RunRecord = { pid, startTime: readStartTime(pid) };
    writeFileSync(file, JSON.stringify(record));
  } catch {
    // Best effort: a run without a record is only unprotected against a later crash.
    return () => {};
  }
  return () => rmSync(file, { force: true });
}

/** Kills the process groups of runs a previous server left behind; returns how many were alive. */
export function killOrphanedRuns(dataDir: string): number {
  const dir = runsDir(dataDir);
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => name.endsWith('.json'));
  } catch {
    return 0;
  }
  let killed = 0;
  for (const name of names) {
    const file = join(dir, name);
    try {
      const record = JSON.parse(readFileSync(file, 'utf8')) as RunRecord;
      const now = readStartTime(record.pid);
      // Alive and the same process (where /proc tells): its whole group goes.
      if (now !== null && record.startTime !== null && now === record.startTime) {
        process.kill(-record.pid, 'SIGKILL');
        killed += 1;
      }
    } catch {
      // Gone already, unreadable or not ours: nothing to stop.
    }
    rmSync(file, { force: true });
  }
  return killed;
}
