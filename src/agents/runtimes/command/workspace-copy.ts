// A retried session's workspace (POST /v1/sessions/:id/retry): its runners find the files the
// original's tasks left, above all those of the tasks carried over, which do not run again.
import { cp, lstat, rm } from 'node:fs/promises';
import { isAbsolute, relative, sep } from 'node:path';
import { AppError } from '../../../errors/app-error.ts';
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
 * INVALID_STATE, naming the entry by its path in the workspace, when the server's user may not read
 * one (a runner made it unreadable, or it runs as another user): the copy made so far is removed,
 * and the retry is refused before anything of it is stored.
 */
export async function copySessionWorkspace(
  dataDir: string,
  fromId: string,
  toId: string,
): Promise<() => Promise<void>> {
  const source = sessionWorkspaceDir(dataDir, fromId);
  const target = sessionWorkspaceDir(dataDir, toId);
  const remove = () => rm(target, { recursive: true, force: true });
  try {
    await cp(source, target, {
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
    throw unreadableEntry(fromId, source, error) ?? error;
  }
  return remove;
}

/**
 * The refusal for an entry of workspace `source` the server's user may not read (EACCES, EPERM on
 * the original's side, not the copy's); undefined for any other failure. The path is the entry's
 * inside the workspace: the server's own directories are no business of the caller's.
 */
function unreadableEntry(sessionId: string, source: string, error: unknown): AppError | undefined {
  const { code, path } = error as NodeJS.ErrnoException;
  if ((code !== 'EACCES' && code !== 'EPERM') || typeof path !== 'string') return undefined;
  const inside = relative(source, path);
  if (inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside)) return undefined;
  const shown = inside === '' ? '.' : inside.split(sep).join('/');
  return new AppError(
    'INVALID_STATE',
    `Session ${sessionId} cannot be retried: its workspace holds ${shown}, which the server may not read (${code}); make it readable to the server's user, or remove it, and retry again`,
    { details: { path: shown, reason: 'unreadable' }, cause: error },
  );
}
