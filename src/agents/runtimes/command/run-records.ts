// Runner processes left behind by a server that died without stopping them (kill -9, OOM kill): a
// runner runs in its own process group, which outlives the server. Each running group is recorded
// under `<dataDir>/runs/`, the record removed when the run ends; at the next start the groups still
// recorded are orphans (one server per data directory: store/server-lock.ts) and are killed before
// the engine re-runs their tasks, so no command runs twice at once. A record also holds the process
// start time (Linux /proc), so a recycled pid is never mistaken for the orphan, and the run's own
// HOME, removed with the record (a crashed server never removed it). HOMEs no record names (the
// server died after forgetting the run, before removing its HOME) are removed at start too. The
// run's id, which every process of the run inherits as MAOS_RUN_ID, finds the processes that left
// the group (setsid) or outlived the runner itself (child-process-groups.ts).
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { killGroups, killRunLeftovers, readProcessStat } from './child-process-groups.ts';
import { makeOwnerOnlyDir, OWNER_ONLY_FILE_MODE } from './owner-only.ts';

interface RunRecord {
  pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks since boot), or null where /proc is missing. */
  startTime: string | null;
  /** The run's HOME (`maos-home-*`, command-runtime.ts), when it got one. */
  home?: string;
  /** The run's MAOS_RUN_ID (records of older versions have none). */
  runId?: string;
}

/** Only a directory named as the command runtime names task HOMEs is ever removed from a record. */
const TASK_HOME_PREFIX = 'maos-home-';

function runsDir(dataDir: string): string {
  return join(resolve(dataDir), 'runs');
}

/**
 * Where the command runtime makes the tasks' HOMEs (and the start-up sweep looks for stray ones): in
 * the data directory, which is writable where the root file system is not, on disk (a tmpfs /tmp
 * would hold package caches in memory) and not mounted noexec (as Docker mounts `--tmpfs`), so tools
 * may run what they install under HOME.
 */
export function taskHomesDir(dataDir: string): string {
  return join(resolve(dataDir), 'homes');
}

/** The start time of process `pid` (Linux), or null when it cannot be read (gone, or no /proc). */
function readStartTime(pid: number): string | null {
  return readProcessStat(pid)?.startTime || null;
}

/**
 * Records the process group `pid` of a run (and its HOME, and the MAOS_RUN_ID its processes carry)
 * as `<dataDir>/runs/<name>.json`; returns the function that forgets it.
 */
export function recordRun(
  dataDir: string,
  name: string,
  pid: number,
  home?: string,
  runId?: string,
): () => void {
  const dir = runsDir(dataDir);
  const file = join(dir, `${name}.json`);
  try {
    makeOwnerOnlyDir(dir);
    const record: RunRecord = {
      pid,
      startTime: readStartTime(pid),
      ...(home === undefined ? {} : { home }),
      ...(runId === undefined ? {} : { runId }),
    };
    // Owner-only: it names the run's id and HOME (the umask can only take bits off 0600).
    writeFileSync(file, JSON.stringify(record), { mode: OWNER_ONLY_FILE_MODE });
  } catch {
    // Best effort: a run without a record is only unprotected against a later crash.
    return () => {};
  }
  return () => rmSync(file, { force: true });
}

/**
 * Kills the processes of runs a previous server left behind and removes their HOMEs; returns how
 * many runs still had processes.
 */
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
      if (killRun(JSON.parse(readFileSync(file, 'utf8')) as RunRecord)) killed += 1;
    } catch {
      // Unreadable or not ours: nothing to stop.
    }
    removeTaskHome(file);
    rmSync(file, { force: true });
  }
  removeUnrecordedHomes(dataDir);
  return killed;
}

/**
 * Kills (SIGKILL) what is left of a recorded run: the runner's group while the runner lives (the same
 * process: start time checked, so a recycled pid is left alone), then killRunLeftovers. Returns
 * whether anything was signalled.
 */
function killRun(record: RunRecord): boolean {
  const now = readStartTime(record.pid);
  const runner = now !== null && record.startTime !== null && now === record.startTime;
  const group = runner && killGroups([record.pid]);
  const leftovers = typeof record.runId === 'string' && killRunLeftovers(record.runId, record.startTime);
  return group || leftovers;
}

/**
 * Removes the task HOMEs (`maos-home-*`) under `<dataDir>/homes` that no run record names: a runner's
 * record is forgotten when it exits and its HOME removed just after, so a server that died in between
 * left the HOME without a record. Only where no run may start meanwhile (at start, before the engine):
 * a HOME exists a moment before its run is recorded. Returns how many were removed.
 */
export function removeUnrecordedHomes(dataDir: string): number {
  const dir = taskHomesDir(dataDir);
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => name.startsWith(TASK_HOME_PREFIX));
  } catch {
    return 0;
  }
  const recorded = new Set(readRecordedHomes(dataDir));
  let removed = 0;
  for (const name of names) {
    const home = join(dir, name);
    if (recorded.has(home)) continue;
    try {
      rmSync(home, { recursive: true, force: true, maxRetries: 3 });
      removed += 1;
    } catch {
      // Cannot be removed (permissions): it stays, as before.
    }
  }
  return removed;
}

/** The HOMEs the current run records name (resolved). */
function readRecordedHomes(dataDir: string): string[] {
  const dir = runsDir(dataDir);
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => name.endsWith('.json'));
  } catch {
    return [];
  }
  const homes: string[] = [];
  for (const name of names) {
    try {
      const { home } = JSON.parse(readFileSync(join(dir, name), 'utf8')) as RunRecord;
      if (typeof home === 'string') homes.push(resolve(home));
    } catch {
      // Unreadable or gone meanwhile: it names no HOME to keep.
    }
  }
  return homes;
}

/** Removes the HOME a run record names, if it is one the command runtime made; best effort. */
function removeTaskHome(recordFile: string): void {
  try {
    const { home } = JSON.parse(readFileSync(recordFile, 'utf8')) as RunRecord;
    if (typeof home !== 'string' || !isAbsolute(home) || !basename(home).startsWith(TASK_HOME_PREFIX)) return;
    rmSync(home, { recursive: true, force: true, maxRetries: 3 });
  } catch {
    // Unreadable record or a HOME that cannot be removed: it stays.
  }
}
