// Makes a new directory entry survive a power cut: creating a file or a directory changes its parent
// directory, and only an fsync of that directory puts the change on disk (POSIX; ext4 mostly does
// it at the file's own fsync, XFS and others need it explicitly). Used where the store creates what
// must outlive the process: the data directory, the database file and its write-ahead log.
import { channel } from 'node:diagnostics_channel';
import { close, closeSync, fsync, fsyncSync, open, openSync } from 'node:fs';

/** Published with `{ path }` after each directory sync (tests and tracing watch it; free without subscribers). */
export const directorySynced = channel('maos:store:directory-synced');

/** File systems that cannot fsync a directory (some network and FUSE ones) say so with these: nothing to do. */
const UNSUPPORTED = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EISDIR']);

function unsupported(error: unknown): boolean {
  return UNSUPPORTED.has(String((error as NodeJS.ErrnoException).code));
}

/** fsyncs the directory `path`, on the calling thread (at start-up, before anything is served). */
export function syncDirectorySync(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    if (unsupported(error)) return;
    throw error;
  }
  try {
    fsyncSync(fd);
  } catch (error) {
    if (!unsupported(error)) throw error;
  } finally {
    closeSync(fd);
  }
  if (directorySynced.hasSubscribers) directorySynced.publish({ path });
}

/** fsyncs the directory `path` on a libuv thread. */
export function syncDirectory(path: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    open(path, 'r', (openError, fd) => {
      if (openError) return unsupported(openError) ? resolve() : reject(openError);
      fsync(fd, (syncError) => {
        close(fd, () => {
          if (syncError && !unsupported(syncError)) return reject(syncError);
          if (directorySynced.hasSubscribers) directorySynced.publish({ path });
          resolve();
        });
      });
    });
  });
}
