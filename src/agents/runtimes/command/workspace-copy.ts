// A retried session's workspace (POST /v1/sessions/:id/retry): its runners find the files the
// original's tasks left, above all those of the tasks carried over, which do not run again.
import { cp, lstat, rm } from 'node:fs/promises';
import { sessionWorkspaceDir } from './session-workspaces.ts';

/**
 * Whether an entry of a workspace is copied: files, directories and symbolic links. A FIFO or a
 * socket a runner left (a control pipe, a server's socket) cannot be copied, and refused the whole
 * retry with a 500; nothing listens on it any more, so the retry's tasks lose nothing without it.
 */
async function isCopied(source: string): Promise<boolean> {
  const stats = await lstat(source);
  return stats.isFile() || stats.isDirectory() || stats.isSymbolicLink();
}

/**
 * Copies the workspace of session `fromId` on this replica to that of `toId` (symbolic links as
 * links, never followed; FIFOs, sockets and devices left out) and returns how to take the copy back
 * (the retry was refused or was a replay). Nothing to copy when the original has no workspace here.
 */
export async function copySessionWorkspace(
  dataDir: string,
  fromId: string,
  toId: string,
): Promise<() => Promise<void>> {
  const target = sessionWorkspaceDir(dataDir, toId);
  const remove = () => rm(target, { recursive: true, force: true });
  try {
    await cp(sessionWorkspaceDir(dataDir, fromId), target, {
      recursive: true,
      errorOnExist: true,
      force: false,
      verbatimSymlinks: true,
      preserveTimestamps: true,
      filter: isCopied,
    });
  } catch (error) {
    await remove();
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return async () => {};
    throw error;
  }
  return remove;
}
