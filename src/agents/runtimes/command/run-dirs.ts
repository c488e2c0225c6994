// The directories the command runtime makes for a run, without blocking the event loop: the session's
// workspace (for a runner without `cwd`), and a HOME and a temporary directory of the run's own, all
// owner-only whatever the umask. Their fixed parents (workspaces/, homes/, tmp/, runs/) are made and
// set to 0700 once, at their first use, not at every start; one found gone later is made again.
import { chmod, mkdir, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError } from '../../../errors/app-error.ts';
import type { RuntimeContext } from '../runtime.ts';
import { OWNER_ONLY_DIR_MODE, removeTree } from './owner-only.ts';

/** Parent directories made owner-only once each (see createOwnerOnlyParents). */
export interface OwnerOnlyParents {
  /**
   * Resolves once directory `path` (and missing parents) exists and is 0700: made on the first call
   * for it, shared by the calls made meanwhile, made again after a failure.
   */
  ensure(path: string): Promise<void>;
  /**
   * Runs `use`, which creates something in parent `path`, once `path` is made (ensure); should `use`
   * fail with ENOENT (the parent was removed since: an operator cleaning up, a test), the parent is
   * made again and `use` runs once more.
   */
  within<T>(path: string, use: () => Promise<T>): Promise<T>;
}

/**
 * The cache of owner-only parents of one runtime. The mode is set explicitly: mkdir's is masked by
 * the umask and only applies to a directory it creates, so an existing one an older version made
 * 0755 is tightened too, at its first use after a start.
 */
export function createOwnerOnlyParents(): OwnerOnlyParents {
  const made = new Map<string, Promise<void>>();
  const ensure = (path: string): Promise<void> => {
    let making = made.get(path);
    if (making === undefined) {
      const started = mkdir(path, { recursive: true, mode: OWNER_ONLY_DIR_MODE }).then(() =>
        chmod(path, OWNER_ONLY_DIR_MODE),
      );
      making = started;
      made.set(path, started);
      started.catch(() => {
        if (made.get(path) === started) made.delete(path);
      });
    }
    return making;
  };
  return {
    ensure,
    async within(path, use) {
      const making = ensure(path);
      await making;
      try {
        return await use();
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        // Made again once (unless another run already has meanwhile), then tried once more.
        if (made.get(path) === making) made.delete(path);
        await ensure(path);
        return use();
      }
    },
  };
}

/** What a run works in: its working directory and the directories of its own it got. */
export interface RunDirs {
  cwd: string;
  /** Its own HOME, unless the runner's `env` names one. */
  home?: string;
  /** Its own temporary directory, unless the runner's `env` names a TMPDIR. */
  tmp?: string;
}

/** Where a run's directories go, and which of them it gets. */
export interface RunDirsPlan {
  runnerName: string;
  /** The runner's own `cwd` (the operator's to set up: nothing made), else undefined. */
  runnerCwd: string | undefined;
  /** The session's workspace and the directory holding every workspace, for a runner without `cwd`. */
  workspace: { root: string; dir: string };
  /** Parent of the run's HOME (a `maos-home-*` under it), or undefined when it gets none. */
  homeParent: { dir: string; prefix: string } | undefined;
  /** Parent of the run's temporary directory, or undefined when it gets none. */
  tempParent: { dir: string; prefix: string } | undefined;
}

function cannotCreate(runnerName: string, what: string, parent: string, error: unknown): AppError {
  return new AppError(
    'RUNNER_FAILED',
    `Runner ${runnerName} could not start: cannot create its ${what} in ${parent}: ${(error as Error).message}`,
    { cause: error },
  );
}

/**
 * Creates a directory of the run's own (a fresh name under `parent`, mode 0700 whatever the umask):
 * - its HOME: tools such as git, npm and pip write there, which the server's own HOME does not allow
 *   on a read-only root file system, and which the tasks of other sessions and tenants must not
 *   share (a `~/.gitconfig` or `~/.npmrc` one of them wrote);
 * - its temporary directory: in the server's shared TMPDIR one run could read another's temporary
 *   files, or plant one where another would pick it up.
 */
async function createOwnDir(
  parents: OwnerOnlyParents,
  runnerName: string,
  parent: { dir: string; prefix: string },
  what: string,
): Promise<string> {
  try {
    const path = await parents.within(parent.dir, () => mkdtemp(join(parent.dir, parent.prefix)));
    // mkdtemp asks for 0700, which a umask could still take bits off.
    await chmod(path, OWNER_ONLY_DIR_MODE);
    return path;
  } catch (error) {
    throw cannotCreate(runnerName, what, parent.dir, error);
  }
}

/**
 * Makes the directories of one run (RunDirsPlan), the two of its own at once. Should one fail, those
 * made are removed and the run fails as one that could not start (RUNNER_FAILED).
 */
export async function createRunDirs(
  parents: OwnerOnlyParents,
  plan: RunDirsPlan,
  ctx: RuntimeContext,
): Promise<RunDirs> {
  const { runnerName } = plan;
  const workspace = async (): Promise<string> => {
    if (plan.runnerCwd !== undefined) return plan.runnerCwd;
    const { root, dir } = plan.workspace;
    try {
      // Not recursive: a missing root fails (ENOENT) and is made again, owner-only.
      await parents.within(root, () =>
        mkdir(dir, { mode: OWNER_ONLY_DIR_MODE }).catch((error: unknown) => {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        }),
      );
      // At every run: a workspace an older version made 0755 is tightened at its next run.
      await chmod(dir, OWNER_ONLY_DIR_MODE);
    } catch (error) {
      throw cannotCreate(runnerName, 'workspace', root, error);
    }
    return dir;
  };
  const [cwd, home, tmp] = await Promise.allSettled([
    workspace(),
    plan.homeParent && createOwnDir(parents, runnerName, plan.homeParent, 'HOME'),
    plan.tempParent && createOwnDir(parents, runnerName, plan.tempParent, 'temporary directory'),
  ]);
  if (cwd.status === 'fulfilled' && home.status === 'fulfilled' && tmp.status === 'fulfilled') {
    return {
      cwd: cwd.value,
      ...(home.value === undefined ? {} : { home: home.value }),
      ...(tmp.value === undefined ? {} : { tmp: tmp.value }),
    };
  }
  const made = [home, tmp].flatMap((result) =>
    result.status === 'fulfilled' && result.value !== undefined ? [result.value] : [],
  );
  await removeRunDirs(made, ctx, 'did not start');
  // The first failure in the order the runs' errors always named: workspace, HOME, temporary directory.
  const failed = [cwd, home, tmp].find((result) => result.status === 'rejected') as PromiseRejectedResult;
  throw failed.reason;
}

/** Removes a run's own directories (HOME, temporary directory); logs those it could not remove. */
export async function removeRunDirs(
  dirs: readonly string[],
  ctx: RuntimeContext,
  why: string,
): Promise<void> {
  for (const dir of dirs) {
    // The group is dead; retried a few times should an escaped process still add files.
    await removeTree(dir).catch((error: unknown) => {
      ctx.logger.warn({ err: error, dir }, `could not remove a directory of a runner that ${why}`);
    });
  }
}
