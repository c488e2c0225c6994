// A lock file that CLI processes on one machine take turns through (`maos login`/`logout` on the
// credentials file): created exclusively, and taken over once its holder has left it for long enough.
import {
  type BigIntStats,
  closeSync,
  fstatSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface FileLockOptions {
  /** A lock older than this is taken to be left by a process that died, and is taken over. */
  staleMs: number;
  /** Give up (FileLockTimeoutError) after waiting this long for a lock that is not stale. */
  waitMs: number;
  /** Pause between attempts. @defaultValue 25 */
  pollMs?: number;
}

/** A lock held: `release` removes it unless another process has taken it over meanwhile. */
export interface FileLock {
  release(): void;
}

/** The lock stayed held by another process (and not stale) for `waitMs`. */
export class FileLockTimeoutError extends Error {
  constructor(lock: string) {
    super(`the lock ${lock} is held by another process`);
    this.name = 'FileLockTimeoutError';
  }
}

/** Which file a path named at one moment: a lock removed and made again is another one. */
function sameFile(a: BigIntStats, b: BigIntStats): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.mtimeNs === b.mtimeNs;
}

function statOrUndefined(path: string): BigIntStats | undefined {
  try {
    return statSync(path, { bigint: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** The claim on taking over one particular stale lock (its device, inode and modification time). */
function claimName(lock: string, stale: BigIntStats): string {
  return `${lock}.takeover-${stale.dev}-${stale.ino}-${stale.mtimeNs}`;
}

/**
 * Removes the stale lock `stale`, if the lock file still is that file. Of the processes that found
 * it stale at once only the one that creates the claim named after it removes it (creating a file
 * exclusively is atomic), and it checks under the claim that the lock was not replaced meanwhile:
 * removing the stale lock and then checking it by name again raced, and two logins both took it
 * over, one of them removing the lock the other had just made. False when another process holds
 * the claim (it is taking this lock over right now).
 */
function takeOver(lock: string, stale: BigIntStats): boolean {
  const claim = claimName(lock, stale);
  try {
    closeSync(openSync(claim, 'wx', 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    const current = statOrUndefined(lock);
    if (current && sameFile(current, stale)) rmSync(lock, { force: true });
  } finally {
    rmSync(claim, { force: true });
  }
  return true;
}

/**
 * Claims on locks that no longer exist, left by a process that died while taking one over: the
 * holder of the lock removes them (a claim only ever guards the lock file it is named after, and
 * that one is gone once another lock is held).
 */
function removeOldClaims(lock: string, held: BigIntStats): void {
  const prefix = `${basename(lock)}.takeover-`;
  const own = basename(claimName(lock, held));
  let names: string[];
  try {
    names = readdirSync(dirname(lock));
  } catch {
    return;
  }
  for (const name of names) {
    if (name.startsWith(prefix) && name !== own) rmSync(join(dirname(lock), name), { force: true });
  }
}

/**
 * Takes the lock file `lock`: creates it exclusively (holding the process id, for a person who finds
 * it), waiting while another process holds it, and taking it over once it is older than `staleMs`.
 * Errors of the file system other than "exists" are thrown as they are.
 */
export async function acquireFileLock(lock: string, options: FileLockOptions): Promise<FileLock> {
  const deadline = Date.now() + options.waitMs;
  for (;;) {
    let fd: number | undefined;
    try {
      fd = openSync(lock, 'wx', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (fd !== undefined) {
      let held: BigIntStats;
      try {
        writeSync(fd, `${process.pid}\n`);
        held = fstatSync(fd, { bigint: true });
      } finally {
        closeSync(fd);
      }
      removeOldClaims(lock, held);
      return { release: () => releaseLock(lock, held) };
    }
    const existing = statOrUndefined(lock);
    if (existing === undefined) continue; // Released meanwhile: try again at once.
    const ageMs = Date.now() - Number(existing.mtimeNs / 1_000_000n);
    if (ageMs > options.staleMs && takeOver(lock, existing)) continue;
    if (Date.now() > deadline) throw new FileLockTimeoutError(lock);
    await new Promise((resume) => setTimeout(resume, options.pollMs ?? 25));
  }
}

/** Removes the lock if it is still the one taken (not one that replaced it after a takeover). */
function releaseLock(lock: string, held: BigIntStats): void {
  const current = statOrUndefined(lock);
  if (current && sameFile(current, held)) rmSync(lock, { force: true });
}
