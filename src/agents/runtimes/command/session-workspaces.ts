// Session workspaces: `<dataDir>/workspaces/<session id>`, where command runners without `cwd` run.
// They are local to the replica that ran the task, so every replica removes those of deleted
// sessions itself: at once after a DELETE it handled, and with a periodic sweep for the rest
// (sessions deleted by the retention job or on another replica, removals that failed), which finds
// them in `deleted_sessions`, or, long after, by their session being unknown to the database.
import { lstat, readdir, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Kysely } from 'kysely';
import { coerceError } from '../../../errors/app-error.ts';
import type { Logger } from '../../../observability/logger.ts';
import { startPeriodicJob } from '../../../store/periodic-job.ts';
import { DELETED_SESSIONS_KEPT_DAYS } from '../../../store/retention-targets.ts';
import type { Database } from '../../../store/schema.ts';
import { removeTree } from './owner-only.ts';

/**
 * A session id as the server generates them (UUIDv7, lower case): only such names are workspaces.
 * Anything else an operator put in the directory is never touched.
 */
const SESSION_ID_NAME = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Names looked up per query (`id in (...)`): far below the bound-parameter limits of SQLite (32,766)
 * and PostgreSQL (65,535), and one primary-key probe each.
 */
export const SWEEP_NAMES_PER_QUERY = 500;

/**
 * How old a workspace of a session the database has no record of at all must be, by its id's
 * creation time and by the newest mtime in its directory, before the sweep removes it: as long as
 * `deleted_sessions` keeps a deleted session's id. A younger unknown workspace cannot be a
 * forgotten deletion (its id would still be recorded); it is a session the database lacks (a
 * restored backup) and stays. A workspace is only created by a task of a stored session, but the
 * margin also covers any session whose row is not committed yet.
 */
export const UNKNOWN_WORKSPACE_MIN_AGE_MS = DELETED_SESSIONS_KEPT_DAYS * 86_400_000;

/**
 * The creation time (Unix ms) in a UUIDv7 session id's first 48 bits; undefined for another UUID
 * version, whose leading bits are no time.
 */
function sessionIdTime(id: string): number | undefined {
  if (id[14] !== '7') return undefined;
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}

/** The directory holding every session workspace of this data directory. */
export function workspacesDir(dataDir: string): string {
  return join(resolve(dataDir), 'workspaces');
}

/** The workspace of one session (a runner without `cwd` runs there). */
export function sessionWorkspaceDir(dataDir: string, sessionId: string): string {
  return join(workspacesDir(dataDir), sessionId);
}

/**
 * True when something under directory `dir`, at any depth, was modified at or after `since`: a
 * directory's own mtime changes only when entries are added to or removed from it, not when a file
 * in it (or deeper) is written. Links are not followed; stops at the first such entry.
 */
async function modifiedSince(dir: string, since: number): Promise<boolean> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if ((await lstat(path)).mtimeMs >= since) return true;
    if (entry.isDirectory() && (await modifiedSince(path, since))) return true;
  }
  return false;
}

/**
 * Removes the workspace entry at `path`: a directory with everything in it, or a symbolic link
 * itself (never what it points to; `rm` does not follow links inside the directory either). A
 * regular file is not a workspace and stays, and so does an entry with anything in it modified at
 * or after `modifiedBefore` when given. True when something was removed; throws when the removal
 * failed (permissions).
 */
async function removeWorkspaceEntry(path: string, modifiedBefore?: number): Promise<boolean> {
  let stats: Awaited<ReturnType<typeof lstat>>;
  try {
    stats = await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  if (modifiedBefore !== undefined && !(stats.mtimeMs < modifiedBefore)) return false;
  if (stats.isSymbolicLink()) {
    await unlink(path);
    return true;
  }
  if (!stats.isDirectory()) return false;
  if (modifiedBefore !== undefined && (await modifiedSince(path, modifiedBefore))) return false;
  // A runner still stopping may add files meanwhile (ENOTEMPTY): retried a few times; directories a
  // runner made read-only are made writable again first.
  await removeTree(path);
  return true;
}

export interface WorkspaceCleanupOptions {
  dataDir: string;
  logger: Logger;
  /** Called with the number of workspaces removed (metrics). */
  onRemoved?: (count: number) => void;
}

/**
 * Returns the hook run after a session was deleted on this replica: removes its workspace. Never
 * throws: a failure is logged as a warning (the session's rows are gone already) and the sweeper
 * tries again at its next pass.
 */
export function createSessionWorkspaceRemover(options: WorkspaceCleanupOptions) {
  return async (sessionId: string): Promise<void> => {
    if (!SESSION_ID_NAME.test(sessionId)) return;
    try {
      if (await removeWorkspaceEntry(sessionWorkspaceDir(options.dataDir, sessionId))) {
        options.onRemoved?.(1);
      }
    } catch (error) {
      options.logger.warn(
        { err: coerceError(error), sessionId },
        'could not remove the workspace of a deleted session; the workspace sweeper retries it',
      );
    }
  };
}

export interface WorkspaceSweepResult {
  /** Workspaces removed. */
  removed: number;
  /** Of `removed`: workspaces of sessions the database has no record of (deleted long ago). */
  unknown: number;
  /** Workspaces of deleted sessions that could not be removed (logged; tried again next pass). */
  failed: number;
}

export interface WorkspaceSweepOptions extends WorkspaceCleanupOptions {
  db: Kysely<Database>;
  /** Checked between removals: true ends the sweep (shutdown). */
  shouldStop?: () => boolean;
  /** Names per lookup in `sessions` and `deleted_sessions`. @defaultValue SWEEP_NAMES_PER_QUERY */
  namesPerQuery?: number;
  /** The sweep's clock (Unix ms), for the age of unknown workspaces. @defaultValue Date.now() */
  now?: number;
}

/**
 * One sweep. Removes every workspace of a session listed in `deleted_sessions` (written by each
 * deletion, kept for DELETED_SESSIONS_KEPT_DAYS in store/retention-targets.ts), and every workspace
 * of a session the database has no record of at all (neither a row nor a recorded deletion: deleted
 * before this replica came back from a long outage, or before a restored data directory's backup)
 * when both its id's creation time and every mtime in it are older than UNKNOWN_WORKSPACE_MIN_AGE_MS.
 * Unknown workspaces are removed only when the database knows at least one workspace of this
 * directory (a row or a recorded deletion): a wrong `store.url` (an empty or another cluster's
 * database) knows none and must not cost files. Names that are not session ids, and regular files,
 * are left alone; the names come from one listing of the workspaces directory, never a path given
 * from outside.
 */
export async function sweepSessionWorkspaces(options: WorkspaceSweepOptions): Promise<WorkspaceSweepResult> {
  const dir = workspacesDir(options.dataDir);
  const result: WorkspaceSweepResult = { removed: 0, unknown: 0, failed: 0 };
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true }))
      .filter((entry) => (entry.isDirectory() || entry.isSymbolicLink()) && SESSION_ID_NAME.test(entry.name))
      .map((entry) => entry.name);
  } catch (error) {
    // No runner has run on this replica yet.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return result;
    throw error;
  }
  const unknownBefore = (options.now ?? Date.now()) - UNKNOWN_WORKSPACE_MIN_AGE_MS;
  const remove = async (name: string, modifiedBefore?: number): Promise<boolean> => {
    try {
      if (!(await removeWorkspaceEntry(join(dir, name), modifiedBefore))) return false;
      result.removed += 1;
      options.onRemoved?.(1);
      return true;
    } catch (error) {
      result.failed += 1;
      options.logger.warn(
        { err: coerceError(error), sessionId: name },
        'could not remove the workspace of a deleted session; trying again next pass',
      );
      return false;
    }
  };
  let databaseKnowsThisDirectory = false;
  const unknownOld: string[] = [];
  const perQuery = options.namesPerQuery ?? SWEEP_NAMES_PER_QUERY;
  for (let start = 0; start < names.length; start += perQuery) {
    const batch = names.slice(start, start + perQuery);
    const deletedRows = await options.db
      .selectFrom('deleted_sessions')
      .select('id')
      .where('id', 'in', batch)
      .execute();
    const deleted = new Set(deletedRows.map((row) => row.id));
    const liveRows = await options.db.selectFrom('sessions').select('id').where('id', 'in', batch).execute();
    const live = new Set(liveRows.map((row) => row.id));
    if (deleted.size > 0 || live.size > 0) databaseKnowsThisDirectory = true;
    for (const name of batch) {
      if (deleted.has(name)) {
        if (options.shouldStop?.()) return result;
        await remove(name);
        continue;
      }
      const createdAt = sessionIdTime(name);
      if (!live.has(name) && createdAt !== undefined && createdAt < unknownBefore) unknownOld.push(name);
    }
  }
  if (unknownOld.length === 0) return result;
  if (!databaseKnowsThisDirectory) {
    options.logger.info(
      { kept: unknownOld.length },
      'kept old workspaces of sessions the database has no record of: it knows none of the workspaces here (a wrong store.url?)',
    );
    return result;
  }
  for (const name of unknownOld) {
    if (options.shouldStop?.()) return result;
    // Its mtimes are read right before the removal: one written to within the window stays.
    if (await remove(name, unknownBefore)) result.unknown += 1;
  }
  return result;
}

export interface WorkspaceSweeper {
  /** Runs one sweep now (tests); resolves when it ends. */
  runOnce(): Promise<WorkspaceSweepResult>;
  /** Stops the timer and waits for a running sweep to end. */
  stop(): Promise<void>;
}

/**
 * Starts the periodic sweep on this replica: the first one interval after start, then every
 * `intervalSeconds`. Not single-flight across the cluster (each replica has its own workspaces);
 * failures (database down) are logged and retried at the next interval; the timer never keeps the
 * process alive.
 */
export function startWorkspaceSweeper(
  options: Omit<WorkspaceSweepOptions, 'shouldStop' | 'now'> & { intervalSeconds: number },
): WorkspaceSweeper {
  return startPeriodicJob<WorkspaceSweepResult>({
    run: (shouldStop) => sweepSessionWorkspaces({ ...options, shouldStop }),
    intervalMs: options.intervalSeconds * 1000,
    onResult: (result) => {
      if (result.removed > 0) {
        options.logger.info(
          { removed: result.removed, unknown: result.unknown },
          'removed workspaces of deleted sessions',
        );
      }
    },
    onError: (error) =>
      options.logger.warn({ err: coerceError(error) }, 'workspace sweep failed; retrying next interval'),
  });
}
