// Run as root (`sudo maos …`) on a data directory that belongs to the service user, MAOS would leave
// files owned by root there (a new database, the server lock, run records, keys, audit checkpoints)
// that the service could not open afterwards. Refused before anything is written, naming the user to
// run as; `MAOS_ALLOW_ROOT=1` lifts the refusal for one invocation.
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { readClientEnv } from '../config/client-env.ts';
import { AppError } from '../errors/app-error.ts';

/** What a command run as root is about to write; see refuseRootOnForeignFiles. */
export interface RootWriteTargets {
  /** The SQLite file, to be created or opened. */
  database?: string;
  /**
   * The command only reads the database (`maos audit verify`, `maos doctor`): an existing one of
   * another user may be opened, SQLite gives the `-wal`/`-shm` it creates the database file's owner.
   */
  readsDatabaseOnly?: boolean;
  /** Directories the command writes files into (data directory, audit checkpoint directory). */
  directories?: readonly string[];
}

/**
 * Throws DATA_DIR_OWNER_MISMATCH (exit 7) when this process runs as root and a target (or, for one
 * still to be created, its nearest existing parent) belongs to another user, unless
 * `MAOS_ALLOW_ROOT` opts in. A target owned by root is root's to use.
 */
export function refuseRootOnForeignFiles(targets: RootWriteTargets): void {
  if (process.getuid?.() !== 0 || readClientEnv().allowRoot) return;
  const { database } = targets;
  if (database !== undefined) {
    if (!existsSync(database)) {
      const parent = nearestExisting(dirname(database));
      refuse(`create ${database}`, parent, 'a database owned by root');
    } else if (!targets.readsDatabaseOnly) {
      refuse(`open ${database}`, database, 'the files root would write beside it');
      refuse(`open ${database}`, dirname(database), 'the files root would write beside it');
    }
  }
  for (const directory of targets.directories ?? []) {
    const path = resolve(directory);
    refuse(`use ${path}`, nearestExisting(path), 'the files root would write there');
  }
}

function refuse(action: string, path: string, what: string): void {
  const owner = statSync(path).uid;
  if (owner === 0) return;
  throw new AppError(
    'DATA_DIR_OWNER_MISMATCH',
    `Refusing to ${action} as root: ${path} belongs to uid ${owner}, and a server running as that user could not open ${what}. Run MAOS as that user (e.g. \`sudo -u '#${owner}' maos …\`; a systemd service with User=), or chown the directory to root if MAOS is meant to run as root (MAOS_ALLOW_ROOT=1 runs as root anyway, once)`,
  );
}

/** `path` itself, or its nearest parent that exists. */
/** `path` itself when it exists, else its nearest existing parent folder (the root at worst). */
export function nearestExisting(path: string): string {
  let at = path;
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
  return at;
}
