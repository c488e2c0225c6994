// A retried session's workspace (POST /v1/sessions/:id/retry): its runners find the files the
// original's tasks left, above all those of the tasks carried over, which do not run again.
import { cp, rm } from 'node:fs/promises';
import { sessionWorkspaceDir } from './session-workspaces.ts';

/**
 * Copies the workspace of session `fromId` on this replica to that of `toId` (symbolic links as
 * links, never followed) and returns how to take the copy back (the retry was refused or was a
 * replay). Nothing to copy when the original has no workspace here.
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
    });
  } catch (error) {
    await remove();
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return async () => {};
    throw error;
  }
  return remove;
}
