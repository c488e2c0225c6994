// A retried session's workspace (POST /v1/sessions/:id/retry): its runners find the files the
// original's tasks left, above all those of the tasks carried over, which do not run again.
import type { Stats } from 'node:fs';
import { chmod, cp, lstat, mkdir } from 'node:fs/promises';
import { isAbsolute, relative, sep } from 'node:path';
import { AppError } from '../../../errors/app-error.ts';
import { makeOwnerOnlyDir, OWNER_ONLY_DIR_MODE, removeTree, restrictTreeToOwner } from './owner-only.ts';
import { sessionWorkspaceDir, workspacesDir } from './session-workspaces.ts';

/**
 * Whether an entry of a workspace is copied: files, directories and symbolic links. A FIFO or a
 * socket a runner left (a control pipe, a server's socket) cannot be copied, and refused the whole
 * retry with a 500; nothing listens on it any more, so the retry's tasks lose nothing without it.
 */
async function isCopied(source: string): Promise<boolean> {
  let stats: Stats;
  try {
    stats = await lstat(source);
  } catch (error) {
    // Gone since its directory was listed (retention, or the original's delete, racing the retry).
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  return stats.isFile() || stats.isDirectory() || stats.isSymbolicLink();
}

/** Copies started over when entries vanish mid-copy, before the retry is refused. */
const MAX_COPY_ATTEMPTS = 3;

/** For tests: called for each entry found copyable, before it is copied. */
export interface WorkspaceCopyOptions {
  afterEntryChecked?: (source: string) => Promise<void> | void;
}

/**
 * Copies the workspace of session `fromId` on this replica to that of `toId` (symbolic links as
 * links, never followed; FIFOs, sockets and devices left out) and returns how to take the copy back
 * (the retry was refused or was a replay). Nothing to copy when the original has no workspace here.
 * An entry that vanishes while the workspace is copied (the original is finished: only retention or
 * its delete, racing the retry, removes files) is left out and the rest copied: the copy starts over
 * (the entry is then not listed) up to MAX_COPY_ATTEMPTS times, then the retry is refused
 * (INVALID_STATE). Before, the vanished entry's ENOENT was read as "no workspace": the retry went
 * ahead with no copy at all.
 * INVALID_STATE, naming the entry by its path in the workspace, when the server's user may not read
 * one (a runner made it unreadable, or it runs as another user): the copy made so far is removed,
 * and the retry is refused before anything of it is stored.
 * The copy is owner-only (directories 0700, files 0600, an executable 0700), whatever modes the
 * original's entries had: its directory is made 0700 before anything is copied into it, so no
 * entry is open to other local users even while it is copied.
 */
export async function copySessionWorkspace(
  dataDir: string,
  fromId: string,
  toId: string,
  options: WorkspaceCopyOptions = {},
): Promise<() => Promise<void>> {
  const source = sessionWorkspaceDir(dataDir, fromId);
  const target = sessionWorkspaceDir(dataDir, toId);
  // A copy of directories a runner made read-only stays read-only: removeTree makes them writable.
  const remove = () => removeTree(target);
  const { afterEntryChecked } = options;
  const filter = afterEntryChecked
    ? async (entry: string) => {
        if (!(await isCopied(entry))) return false;
        await afterEntryChecked(entry);
        return true;
      }
    : isCopied;
  // No workspace here, nothing to copy: no (empty) directory is made for the retry either.
  if (!(await isCopied(source))) return async () => {};
  for (let attempt = 1; ; attempt++) {
    try {
      // Made first, empty (a new session's: mkdir fails should it exist), then copied into: cp
      // keeps the mode of a directory that exists instead of giving it the original's.
      makeOwnerOnlyDir(workspacesDir(dataDir));
      await mkdir(target, { mode: OWNER_ONLY_DIR_MODE });
      await chmod(target, OWNER_ONLY_DIR_MODE);
      await cp(source, target, {
        recursive: true,
        // Not errorOnExist, which refuses the directory made above; nothing in it is overwritten.
        force: false,
        verbatimSymlinks: true,
        preserveTimestamps: true,
        filter,
      });
      await restrictTreeToOwner(target);
      return remove;
    } catch (error) {
      await remove();
      const vanished = vanishedEntry(source, error);
      if (vanished === '.') return async () => {};
      if (vanished === undefined) throw unreadableEntry(fromId, source, error) ?? error;
      if (attempt >= MAX_COPY_ATTEMPTS) {
        throw new AppError(
          'INVALID_STATE',
          `Session ${fromId} cannot be retried: its workspace changed while it was copied (${vanished} was removed); retry again`,
          { details: { path: vanished, reason: 'changed' }, cause: error },
        );
      }
    }
  }
}

/**
 * For an ENOENT on the original's side, the path inside workspace `source` of what vanished ('.':
 * the workspace itself, so nothing to copy); undefined for any other failure.
 */
function vanishedEntry(source: string, error: unknown): string | undefined {
  const { code, path } = error as NodeJS.ErrnoException;
  if (code !== 'ENOENT' || typeof path !== 'string') return undefined;
  return insideWorkspace(source, path);
}

/** The path of `path` inside workspace `source`, '/'-separated ('.' for the workspace itself). */
function insideWorkspace(source: string, path: string): string | undefined {
  const inside = relative(source, path);
  if (inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside)) return undefined;
  return inside === '' ? '.' : inside.split(sep).join('/');
}

/**
 * The refusal for an entry of workspace `source` the server's user may not read (EACCES, EPERM on
 * the original's side, not the copy's); undefined for any other failure. The path is the entry's
 * inside the workspace: the server's own directories are no business of the caller's.
 */
function unreadableEntry(sessionId: string, source: string, error: unknown): AppError | undefined {
  const { code, path } = error as NodeJS.ErrnoException;
  if ((code !== 'EACCES' && code !== 'EPERM') || typeof path !== 'string') return undefined;
  const shown = insideWorkspace(source, path);
  if (shown === undefined) return undefined;
  return new AppError(
    'INVALID_STATE',
    `Session ${sessionId} cannot be retried: its workspace holds ${shown}, which the server may not read (${code}); make it readable to the server's user, or remove it, and retry again`,
    { details: { path: shown, reason: 'unreadable' }, cause: error },
  );
}
