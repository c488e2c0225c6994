// Modes of what the command runtime creates for runs (session workspaces, task HOMEs and temporary
// directories, run records): owner-only, whatever the process umask. A runner's files hold a
// tenant's code and outputs; under the usual umask (022) a directory made with the default mode is
// 0755, readable by every local user of the host.
import { chmodSync, lstatSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { chmod, lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** rwx for the owner alone. */
export const OWNER_ONLY_DIR_MODE = 0o700;
/** rw for the owner alone. */
export const OWNER_ONLY_FILE_MODE = 0o600;

/**
 * Creates directory `path` (and missing parents) and sets it to 0700. The mode given to mkdir is
 * masked by the umask (and only applies to a directory it creates), so the mode is set explicitly:
 * an existing directory, made 0755 by an older version, is tightened too.
 */
export function makeOwnerOnlyDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: OWNER_ONLY_DIR_MODE });
  chmodSync(path, OWNER_ONLY_DIR_MODE);
}

/**
 * Takes the group and other permission bits off every directory and file under `root` (not `root`
 * itself): 0755 becomes 0700, 0644 becomes 0600; the owner's bits, an executable's included, stay.
 * Symbolic links are neither followed nor changed (their mode means nothing on Linux); other
 * entries (FIFOs, sockets) are left as they are. An entry removed meanwhile is skipped.
 */
export async function restrictTreeToOwner(root: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  for (const name of names) {
    const path = join(root, name);
    let stats: Awaited<ReturnType<typeof lstat>>;
    try {
      stats = await lstat(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    if (!stats.isDirectory() && !stats.isFile()) continue;
    const mode = stats.mode & 0o7777;
    // Set-id bits go too: nothing of a copied workspace runs as its owner's group.
    const owned = mode & OWNER_ONLY_DIR_MODE;
    if (owned !== mode) await chmod(path, owned);
    if (stats.isDirectory()) await restrictTreeToOwner(path);
  }
}

/**
 * Whether a removal failed for want of write permission on a directory: a runner may leave
 * directories its owner may not write (Go's module cache makes its directories read-only), and
 * deleting an entry needs write permission on the directory that holds it. Root may delete anyway,
 * the server's user (uid 1000 in the container image) may not.
 */
function lacksPermission(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'EACCES' || code === 'EPERM';
}

/** A directory's mode with the owner's rwx back (so its entries can be listed and deleted). */
function withOwnerAccess(mode: number): number | undefined {
  const bits = mode & 0o7777;
  return (bits & OWNER_ONLY_DIR_MODE) === OWNER_ONLY_DIR_MODE ? undefined : bits | OWNER_ONLY_DIR_MODE;
}

/** Gives the owner rwx back on directory `path` and every directory under it (links not followed). */
async function restoreOwnerAccess(path: string): Promise<void> {
  let stats: Awaited<ReturnType<typeof lstat>>;
  try {
    stats = await lstat(path);
  } catch {
    return;
  }
  if (!stats.isDirectory()) return;
  const mode = withOwnerAccess(stats.mode);
  // Not ours to change (another user's): the removal fails as it did.
  if (mode !== undefined) await chmod(path, mode).catch(() => {});
  const names = await readdir(path).catch(() => [] as string[]);
  for (const name of names) await restoreOwnerAccess(join(path, name));
}

function restoreOwnerAccessSync(path: string): void {
  let stats: ReturnType<typeof lstatSync>;
  try {
    stats = lstatSync(path);
  } catch {
    return;
  }
  if (!stats.isDirectory()) return;
  const mode = withOwnerAccess(stats.mode);
  try {
    if (mode !== undefined) chmodSync(path, mode);
  } catch {
    // Not ours to change: the removal fails as it did.
  }
  let names: string[] = [];
  try {
    names = readdirSync(path);
  } catch {
    // Unreadable: the removal fails as it did.
  }
  for (const name of names) restoreOwnerAccessSync(join(path, name));
}

/**
 * Removes `path` and everything under it (`rm -rf`; links are removed, never followed), also where a
 * runner left directories without write permission for their owner: those get the owner's rwx
 * back, then the removal is tried again. `rm` retries a few times should a process still add files.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true, maxRetries: 3 });
  } catch (error) {
    if (!lacksPermission(error)) throw error;
    await restoreOwnerAccess(path);
    await rm(path, { recursive: true, force: true, maxRetries: 3 });
  }
}

/** removeTree, blocking: for the sweeps at start, before the engine runs. */
export function removeTreeSync(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true, maxRetries: 3 });
  } catch (error) {
    if (!lacksPermission(error)) throw error;
    restoreOwnerAccessSync(path);
    rmSync(path, { recursive: true, force: true, maxRetries: 3 });
  }
}
