// Small files that must be whole after a crash or a power cut (the audit signing key, its checkpoint
// copies, the CLI's credentials): written to a temporary file in the same directory, fsynced, then
// moved into place, and the directory synced. A plain writeFileSync can leave an empty or cut file
// behind (the page cache was never flushed, or the disk filled mid-write): a server whose signing
// key file is empty cannot start, and a cut credentials file loses every server's token.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { syncDirectorySync } from './sync-directory.ts';

export interface DurableWriteOptions {
  /** File mode of the new file (default 0o600: these files hold secrets or evidence). */
  mode?: number;
  /**
   * Never replace an existing file: fails with EEXIST as `flag: 'wx'` does, and the file that is
   * there stays as it was (a hard link, which the kernel refuses to put over an existing name).
   */
  exclusive?: boolean;
  /** false: the caller syncs the directory itself (to tell that failure apart); default true. */
  syncDirectory?: boolean;
}

/**
 * Writes `content` to `path` so that after a crash the path holds either its old content (or
 * nothing) or the whole new content, never a part. Throws the file system's error (the temporary
 * file removed); the directory sync's own error too, after the file is in place.
 */
export function writeFileDurablySync(path: string, content: string, options: DurableWriteOptions = {}): void {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fd = openSync(temporary, 'wx', options.mode ?? 0o600);
    try {
      // writeFileSync on a descriptor writes until all is written (a single write may be short).
      writeFileSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (options.exclusive) {
      linkOrWriteExclusive(temporary, path, content, options.mode ?? 0o600);
      unlinkSync(temporary);
    } else {
      renameSync(temporary, path);
    }
  } catch (error) {
    try {
      unlinkSync(temporary);
    } catch {
      // Never created, or already moved into place.
    }
    throw error;
  }
  if (options.syncDirectory !== false) syncDirectorySync(dirname(path));
}

/** File systems without hard links (some FUSE and network ones, FAT) answer link() with these. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Puts the written temporary file at `path` unless a file is there (EEXIST). Where the file system has
 * no hard links, the file is created in place with O_EXCL and fsynced: still never replacing one, but
 * a crash mid-write can leave it cut, as any file there would be.
 */
function linkOrWriteExclusive(temporary: string, path: string, content: string, mode: number): void {
  try {
    linkSync(temporary, path);
    return;
  } catch (error) {
    if (!NO_HARD_LINKS.has(String((error as NodeJS.ErrnoException).code))) throw error;
  }
  const fd = openSync(path, 'wx', mode);
  try {
    writeFileSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
