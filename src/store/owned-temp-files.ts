// Temporary files beside an output (`maos backup`'s copy, `maos tenants export`'s archive) whose
// names say which process on which host writes them: runs at once to one output each write their
// own, and a later run removes those a killed run left (its process gone), and no others.
import { randomBytes } from 'node:crypto';
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';

/** How the temporary files of one kind are named: `<prefix><output name>.<tag>-<pid>-<random>-<host><suffix>`. */
export interface TempNaming {
  /** `.` hides them (ls without -a). @defaultValue '' */
  prefix?: string;
  /** What writes them: `partial` (backup), `export`. Letters only. */
  tag: string;
  /** @defaultValue '' */
  suffix?: string;
  /**
   * Files that go with a temporary file, named after it plus one of these (SQLite's `-journal`
   * beside a copy it writes): removed with it, also when it is gone already. @defaultValue []
   */
  sideSuffixes?: readonly string[];
}

/** This host's name as it goes into a file name (letters, digits, `.` and `-`; at most 64). */
function hostTag(): string {
  return (
    hostname()
      .replace(/[^A-Za-z0-9.-]/g, '_')
      .slice(0, 64) || 'localhost'
  );
}

/** A new temporary file name beside `output`, of this process on this host. */
export function ownedTempPath(output: string, naming: TempNaming): string {
  const random = randomBytes(6).toString('hex');
  const name = `${naming.prefix ?? ''}${basename(output)}.${naming.tag}-${process.pid}-${random}-${hostTag()}${naming.suffix ?? ''}`;
  return join(dirname(output), name);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Whether a process with this id runs on this host (one of another user counts: it may be ours). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Removes the temporary files of this kind beside `output` (and their side files) that a run which
 * is gone left behind (a `kill -9`, a power cut): named for `output` and this host, a regular file
 * of this user, and its process no longer running. Files of other hosts (a shared backup volume), of other users, of
 * running processes and names of any other shape are left alone. Returns the paths removed.
 */
export function removeStaleOwnedTemps(output: string, naming: TempNaming): string[] {
  const folder = dirname(output);
  const pattern = new RegExp(
    `^${escapeRegExp(`${naming.prefix ?? ''}${basename(output)}.${naming.tag}-`)}(\\d+)-[0-9a-f]{12}-(.+)$`,
  );
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch {
    return [];
  }
  // What follows the random part: this host's name and the suffix, then a side file's own, if any.
  const ends = ['', ...(naming.sideSuffixes ?? [])].map(
    (side) => `${hostTag()}${naming.suffix ?? ''}${side}`,
  );
  const uid = process.getuid?.();
  const removed: string[] = [];
  for (const name of names) {
    const match = pattern.exec(name);
    if (!match || !ends.includes(match[2] ?? '')) continue;
    const pid = Number(match[1]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || processAlive(pid)) continue;
    const path = join(folder, name);
    try {
      const stats = lstatSync(path);
      if (!stats.isFile() || (uid !== undefined && stats.uid !== uid)) continue;
      rmSync(path, { force: true });
      removed.push(path);
    } catch {
      // Removed meanwhile (another run cleaning up too), or not ours to remove.
    }
  }
  return removed;
}
