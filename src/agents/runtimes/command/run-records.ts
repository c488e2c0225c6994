// Runner processes left behind by a server that died without stopping them (kill -9, OOM kill): a
// runner runs in its own process group, which outlives the server. Each running group is recorded
// under `<dataDir>/runs/`, the record removed when the run ends; at the next start the groups still
// recorded are orphans (one server per data directory: store/server-lock.ts) and are killed before
// the engine re-runs their tasks, so no command runs twice at once. A record also holds the process
// start time (Linux /proc), so a recycled pid is never mistaken for the orphan, and the run's own
// HOME and temporary directory, removed with the record (a crashed server never removed them).
// Those no record names (the server died after forgetting the run, before removing them) are
// removed at start too. The
// run's id, which every process of the run inherits as MAOS_RUN_ID, finds the processes that left
// the group (setsid) or outlived the runner itself (child-process-groups.ts).
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { killGroups, killRunLeftovers, readProcessStat } from './child-process-groups.ts';
import { makeOwnerOnlyDir, OWNER_ONLY_FILE_MODE, removeTreeSync } from './owner-only.ts';

interface RunRecord {
  pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks since boot), or null where /proc is missing. */
  startTime: string | null;
  /** The run's HOME (`maos-home-*`, command-runtime.ts), when it got one. */
  home?: string;
  /** The run's MAOS_RUN_ID (records of older versions have none). */
  runId?: string;
  /** The run's private TMPDIR (`maos-tmp-*`, command-runtime.ts), when it got one. */
  tmp?: string;
}

/** Only a directory named as the command runtime names task HOMEs is ever removed from a record. */
export const TASK_HOME_PREFIX = 'maos-home-';
/** Likewise for the runs' private temporary directories. */
export const RUN_TEMP_PREFIX = 'maos-tmp-';

/** Where the records of running runners go: `<dataDir>/runs`. */
export function runRecordsDir(dataDir: string): string {
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

/**
 * Where the command runtime makes each run's private temporary directory (TMPDIR, TMP, TEMP): beside
 * the HOMEs, for the same reasons, and never the server's own TMPDIR, which every run shared (one
 * could read or plant files in another's temporary files).
 */
export function runTempsDir(dataDir: string): string {
  return join(resolve(dataDir), 'tmp');
}

/** The start time of process `pid` (Linux), or null when it cannot be read (gone, or no /proc). */
function readStartTime(pid: number): string | null {
  return readProcessStat(pid)?.startTime || null;
}

/**
 * Records the process group `pid` of a run (and its HOME, the MAOS_RUN_ID its processes carry and
 * its temporary directory) as `<dataDir>/runs/<name>.json`; returns the function that forgets it.
 */
export function recordRun(
  dataDir: string,
  name: string,
  pid: number,
  home?: string,
  runId?: string,
  tmp?: string,
): () => void {
  const dir = runRecordsDir(dataDir);
  const file = join(dir, `${name}.json`);
  const record: RunRecord = {
    pid,
    startTime: readStartTime(pid),
    ...(home === undefined ? {} : { home }),
    ...(runId === undefined ? {} : { runId }),
    ...(tmp === undefined ? {} : { tmp }),
  };
  // Owner-only: it names the run's id and HOME (the umask can only take bits off 0600).
  const write = () => writeFileSync(file, JSON.stringify(record), { mode: OWNER_ONLY_FILE_MODE });
  try {
    // Written at once, in the tick that started the run. Its directory is made owner-only before
    // the first run (the command runtime), here only should it be missing.
    try {
      write();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      makeOwnerOnlyDir(dir);
      write();
    }
  } catch {
    // Best effort: a run without a record is only unprotected against a later crash.
    return () => {};
  }
  return () => rmSync(file, { force: true });
}

/**
 * Kills the processes of runs a previous server left behind and removes their HOMEs and temporary
 * directories; returns how many runs still had processes.
 */
export function killOrphanedRuns(dataDir: string): number {
  const dir = runRecordsDir(dataDir);
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
    removeRecordedDirs(file);
    rmSync(file, { force: true });
  }
  removeUnrecordedRunDirs(dataDir);
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
 * Removes the task HOMEs (`maos-home-*` under `<dataDir>/homes`) and the runs' temporary directories
 * (`maos-tmp-*` under `<dataDir>/tmp`) that no run record names: a runner's record is forgotten when
 * it exits and its directories removed just after, so a server that died in between left them
 * without a record. Only where no run may start meanwhile (at start, before the engine): they exist
 * a moment before their run is recorded. Returns how many were removed.
 */
export function removeUnrecordedRunDirs(dataDir: string): number {
  const recorded = new Set(readRecordedDirs(dataDir));
  let removed = 0;
  const places: ReadonlyArray<[string, string]> = [
    [taskHomesDir(dataDir), TASK_HOME_PREFIX],
    [runTempsDir(dataDir), RUN_TEMP_PREFIX],
  ];
  for (const [dir, prefix] of places) {
    let names: string[];
    try {
      names = readdirSync(dir).filter((name) => name.startsWith(prefix));
    } catch {
      continue;
    }
    for (const name of names) {
      const path = join(dir, name);
      if (recorded.has(path)) continue;
      try {
        removeTreeSync(path);
        removed += 1;
      } catch {
        // Cannot be removed (permissions): it stays, as before.
      }
    }
  }
  return removed;
}

/** The HOMEs and temporary directories the current run records name (resolved). */
function readRecordedDirs(dataDir: string): string[] {
  const dir = runRecordsDir(dataDir);
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => name.endsWith('.json'));
  } catch {
    return [];
  }
  const dirs: string[] = [];
  for (const name of names) {
    try {
      const { home, tmp } = JSON.parse(readFileSync(join(dir, name), 'utf8')) as RunRecord;
      if (typeof home === 'string') dirs.push(resolve(home));
      if (typeof tmp === 'string') dirs.push(resolve(tmp));
    } catch {
      // Unreadable or gone meanwhile: it names nothing to keep.
    }
  }
  return dirs;
}

/**
 * Removes the HOME and temporary directory a run record names, each only if it is one the command
 * runtime made (named so, an absolute path); best effort.
 */
function removeRecordedDirs(recordFile: string): void {
  let record: RunRecord;
  try {
    record = JSON.parse(readFileSync(recordFile, 'utf8')) as RunRecord;
  } catch {
    return;
  }
  for (const [path, prefix] of [
    [record.home, TASK_HOME_PREFIX],
    [record.tmp, RUN_TEMP_PREFIX],
  ] as const) {
    if (typeof path !== 'string' || !isAbsolute(path) || !basename(path).startsWith(prefix)) continue;
    try {
      removeTreeSync(path);
    } catch {
      // Cannot be removed: it stays.
    }
  }
}
