// Session workspaces: `<dataDir>/workspaces/<session id>`, where command runners without `cwd` run.
// They are local to the replica that ran the task, so every replica removes those of deleted
// sessions itself: at once after a DELETE it handled, and with a periodic sweep for the rest
// (sessions deleted by the retention job or on another replica, removals that failed), which finds
// them in `deleted_sessions`.
import { lstat, readdir, rm, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Kysely } from 'kysely';
import { coerceError } from '../../../errors/app-error.ts';
import type { Logger } from '../../../observability/logger.ts';
import { startPeriodicJob } from '../../../store/periodic-job.ts';
import type { Database } from '../../../store/schema.ts';

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

/** The directory holding every session workspace of this data directory. */
export function workspacesDir(dataDir: string): string {
  return join(resolve(dataDir), 'workspaces');
}

/** The workspace of one session (a runner without `cwd` runs there). */
export function sessionWorkspaceDir(dataDir: string, sessionId: string): string {
  return join(workspacesDir(dataDir), sessionId);
}

/**
 * Removes the workspace entry at `path`: a directory with everything in it, or a symbolic link
 * itself (never what it points to; `rm` does not follow links inside the directory either). A
 * regular file is not a workspace and stays. True when something was removed; throws when the
 * removal failed (permissions).
 */
async function removeWorkspaceEntry(path: string): Promise<boolean> {
  let stats: Awaited<ReturnType<typeof lstat>>;
  try {
    stats = await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  if (stats.isSymbolicLink()) {
    await unlink(path);
    return true;
  }
  if (!stats.isDirectory()) return false;
  // A runner still stopping may add files meanwhile (ENOTEMPTY): `rm` retries a few times.
  await rm(path, { recursive: true, force: true, maxRetries: 3 });
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
  /** Workspaces of deleted sessions that could not be removed (logged; tried again next pass). */
  failed: number;
}

export interface WorkspaceSweepOptions extends WorkspaceCleanupOptions {
  db: Kysely<Database>;
  /** Checked between removals: true ends the sweep (shutdown). */
  shouldStop?: () => boolean;
  /** Names per `sessions` query. @defaultValue SWEEP_NAMES_PER_QUERY */
  namesPerQuery?: number;
}

/**
 * One sweep: removes every workspace of a session listed in `deleted_sessions` (written by each
 * deletion, kept for DELETED_SESSIONS_KEPT_DAYS in store/retention-targets.ts). A workspace whose session is merely absent is
 * kept: a database that lacks it (a wrong `store.url`, a restored backup) must never cost files.
 * Names that are not session ids, and regular files, are left alone.
 */
export async function sweepSessionWorkspaces(options: WorkspaceSweepOptions): Promise<WorkspaceSweepResult> {
  const dir = workspacesDir(options.dataDir);
  const result: WorkspaceSweepResult = { removed: 0, failed: 0 };
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
  const perQuery = options.namesPerQuery ?? SWEEP_NAMES_PER_QUERY;
  for (let start = 0; start < names.length; start += perQuery) {
    const batch = names.slice(start, start + perQuery);
    const rows = await options.db
      .selectFrom('deleted_sessions')
      .select('id')
      .where('id', 'in', batch)
      .execute();
    const deleted = new Set(rows.map((row) => row.id));
    for (const name of batch) {
      if (!deleted.has(name)) continue;
      if (options.shouldStop?.()) return result;
      try {
        if (await removeWorkspaceEntry(join(dir, name))) {
          result.removed += 1;
          options.onRemoved?.(1);
        }
      } catch (error) {
        result.failed += 1;
        options.logger.warn(
          { err: coerceError(error), sessionId: name },
          'could not remove the workspace of a deleted session; trying again next pass',
        );
      }
    }
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
  options: Omit<WorkspaceSweepOptions, 'shouldStop'> & { intervalSeconds: number },
): WorkspaceSweeper {
  return startPeriodicJob<WorkspaceSweepResult>({
    run: (shouldStop) => sweepSessionWorkspaces({ ...options, shouldStop }),
    intervalMs: options.intervalSeconds * 1000,
    onResult: (result) => {
      if (result.removed > 0) {
        options.logger.info({ removed: result.removed }, 'removed workspaces of deleted sessions');
      }
    },
    onError: (error) =>
      options.logger.warn({ err: coerceError(error) }, 'workspace sweep failed; retrying next interval'),
  });
}
