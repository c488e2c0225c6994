// Modes of what the command runtime creates for runs (session workspaces, task HOMEs and temporary
// directories, run records): owner-only, whatever the process umask. A runner's files hold a
// tenant's code and outputs; under the usual umask (022) a directory made with the default mode is
// 0755, readable by every local user of the host.
import { chmodSync, mkdirSync } from 'node:fs';
import { chmod, lstat, readdir } from 'node:fs/promises';
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
