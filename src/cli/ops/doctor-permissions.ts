// `maos doctor` data-dir check, permissions part: the data directory and the SQLite database hold
// every tenant's sessions, API key hashes and sealed secrets, so modes looser than the ones a new
// install creates (0750 and 0600, store/db.ts) are worth a warning with the chmod that fixes them.
import { existsSync, statSync } from 'node:fs';

/** Modes a new install creates (store/db.ts); looser ones are reported. */
const DATA_DIR_MODE = 0o750;
const DATABASE_FILE_MODE = 0o600;

/** Files SQLite keeps beside the database, created with its mode: they hold its latest pages. */
const SIDE_FILE_SUFFIXES = ['-wal', '-shm'] as const;

/** A permission finding: what is too open, and the command that closes it. */
export interface LoosePermissions {
  message: string;
  fix: string;
}

/**
 * Compares the data directory and, when given and present, the SQLite database (with its -wal/-shm)
 * against 0750 and 0600. Undefined when both are as strict or stricter.
 */
export function findLoosePermissions(dataDir: string, databasePath?: string): LoosePermissions | undefined {
  const problems: string[] = [];
  const fixes: string[] = [];
  const dirMode = statSync(dataDir).mode & 0o777;
  if ((dirMode & ~DATA_DIR_MODE) !== 0) {
    const what = describeAccess(dirMode, DATA_DIR_MODE, 'searchable');
    problems.push(`${dataDir} is ${formatMode(dirMode)} (${what})`);
    fixes.push(`chmod 750 ${dataDir}`);
  }
  if (databasePath !== undefined && existsSync(databasePath)) {
    const fileMode = statSync(databasePath).mode & 0o777;
    if ((fileMode & ~DATABASE_FILE_MODE) !== 0) {
      problems.push(
        `${databasePath} is ${formatMode(fileMode)} (${describeAccess(fileMode, DATABASE_FILE_MODE, 'executable')})`,
      );
      const files = [databasePath, ...SIDE_FILE_SUFFIXES.map((suffix) => databasePath + suffix)];
      fixes.push(`chmod 600 ${files.filter((file) => existsSync(file)).join(' ')}`);
    }
  }
  if (problems.length === 0) return undefined;
  return {
    message: `${problems.join('; ')}: it holds the database, keys and every tenant's data`,
    fix: `${fixes.join(' && ')} (new installs use 0750 for the directory, 0600 for the database)`,
  };
}

/** Who gets access beyond `allowed`: "group-readable", "world-readable, world-writable" … */
function describeAccess(mode: number, allowed: number, execute: 'searchable' | 'executable'): string {
  const extra = mode & ~allowed;
  const found: string[] = [];
  for (const [who, shift] of [
    ['group', 3],
    ['world', 0],
  ] as const) {
    if ((extra >> shift) & 0o4) found.push(`${who}-readable`);
    if ((extra >> shift) & 0o2) found.push(`${who}-writable`);
    if ((extra >> shift) & 0o1) found.push(`${who}-${execute}`);
  }
  return found.join(', ');
}

function formatMode(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}
