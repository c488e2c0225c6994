// PostgreSQL mode: replicas may share a data directory, so each keeps its runners' HOMEs and run
// records (run-records.ts) in a directory of its own, `<dataDir>/replicas/<id>/`, and holds a lock on
// `replica.lock` in it for its whole life (an exclusive SQLite lock, as store/server-lock.ts takes:
// the operating system drops it when the process ends, however it ends). At start, and then about
// once a lease, a replica removes the directories of replicas that are gone, after killing their
// runners still running where their pids name them (same machine, same pid namespace); the directory
// of a live replica is never touched.
import { lstatSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import type { Kysely } from 'kysely';
import { AppError, coerceError } from '../../../errors/app-error.ts';
import type { Logger } from '../../../observability/logger.ts';
import { newId } from '../../../store/ids.ts';
import { leaseNow } from '../../../store/lease-clock.ts';
import { type PeriodicJob, startPeriodicJob } from '../../../store/periodic-job.ts';
import { killOrphanedRuns } from './run-records.ts';

const LOCK_FILE = 'replica.lock';
/**
 * A sweeping replica may hold a new replica's lock file for the moment it takes to read it; the new
 * replica waits that long rather than failing its start.
 */
const CLAIM_BUSY_TIMEOUT_MS = 5000;

/** This replica's directory under `<dataDir>/replicas`, locked while the replica lives. */
export interface ReplicaDir {
  /** `<dataDir>/replicas/<id>`: the command runtime's `homes/` and `runs/` go in it. */
  readonly path: string;
  /** The engine's worker id (the tasks' `lease_owner`) of this replica. */
  readonly workerId: string;
  /**
   * Removes the directory (unless a run record is left in it: a runner that did not stop, for the
   * next start to kill) and drops the lock. Call after the engine has stopped.
   */
  release(): void;
}

/** Who held a replica directory, as its lock file records it. */
interface Holder {
  worker_id: string;
  /** /proc/sys/kernel/random/boot_id of the holder's machine ('' where it cannot be read). */
  boot_id: string;
  /** The holder's pid namespace (/proc/self/ns/pid: its container); '' where unknown. */
  pid_ns?: string;
}

/** What a sweep removed. */
export interface ReplicaSweep {
  /** Directories of gone replicas removed. */
  removed: number;
  /** Runner process groups of theirs still running, killed. */
  killed: number;
}

export interface SweepOptions {
  /**
   * Whether the store holds an unexpired task lease of `workerId`. Asked only of a replica that ran on
   * another machine or in another container (or one whose boot id is unknown): its lock is then only
   * as good as the shared file system's locking, or its runners are out of reach, and a replica with a
   * running task always holds a lease.
   */
  holdsLease(workerId: string): Promise<boolean>;
}

function replicasDir(dataDir: string): string {
  return join(resolve(dataDir), 'replicas');
}

/**
 * Identifies the running kernel: the same in every container of a machine, new at each boot. Two
 * processes with the same boot id see each other's file locks, and a recorded process start time
 * means the same to both; '' where it is unknown.
 */
function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * Identifies the processes a pid names: a container has a pid namespace of its own, in which the
 * same number is another process than in this one; '' where it is unknown.
 */
function readPidNamespace(): string {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return '';
  }
}

/**
 * Creates this replica's directory and takes its lock; the returned worker id is to be the engine's,
 * so that sweeps can ask the store for its leases.
 */
export async function claimReplicaDir(dataDir: string): Promise<ReplicaDir> {
  const id = newId();
  const path = join(replicasDir(dataDir), id);
  const workerId = `${hostname()}:${process.pid}:${id.slice(-12)}`;
  let lock: SqliteDatabase.Database | undefined;
  try {
    // A missing data directory gets the mode the store gives it (store/db.ts); the replica's own, 0700.
    await mkdir(replicasDir(dataDir), { recursive: true, mode: 0o750 });
    await mkdir(path, { mode: 0o700 });
    lock = new SqliteDatabase(join(path, LOCK_FILE));
    lock.pragma(`busy_timeout = ${CLAIM_BUSY_TIMEOUT_MS}`);
    // Exclusive locking mode keeps the lock after the write that takes it, until the file closes.
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec('begin exclusive');
    lock.exec(
      'create table holder (worker_id text not null, boot_id text not null, pid_ns text not null, pid integer not null)',
    );
    lock
      .prepare('insert into holder (worker_id, boot_id, pid_ns, pid) values (?, ?, ?, ?)')
      .run(workerId, readBootId(), readPidNamespace(), process.pid);
    lock.exec('commit');
  } catch (error) {
    lock?.close();
    try {
      rmSync(path, { recursive: true, force: true });
    } catch {
      // Not even that can be written: the error below says why.
    }
    throw new AppError(
      'STORE_UNAVAILABLE',
      `Cannot create the replica directory ${path}: ${(error as Error).message} (the data directory must be writable by the user running MAOS)`,
      { cause: error },
    );
  }
  const held = lock;
  return {
    path,
    workerId,
    release() {
      if (!held.open) return;
      try {
        if (!hasRunRecords(path)) rmSync(path, { recursive: true, force: true, maxRetries: 3 });
      } catch {
        // Cannot be removed (permissions): another replica's sweep tries again once the lock is free.
      }
      held.close();
    },
  };
}

function hasRunRecords(path: string): boolean {
  try {
    return readdirSync(join(path, 'runs')).some((name) => name.endsWith('.json'));
  } catch {
    return false;
  }
}

/**
 * Removes the directories under `<dataDir>/replicas` of replicas that are gone, except `ownPath`: a
 * directory whose lock can be taken (its process has ended) and, when that process ran on another
 * machine, whose worker holds no lease in the store. The runners a gone replica of this machine left
 * running are killed first (run-records.ts). A directory without a written lock file (a replica
 * starting) or whose lock is held is left alone, and so is a symbolic link.
 */
export async function sweepGoneReplicaDirs(
  dataDir: string,
  ownPath: string,
  options: SweepOptions,
): Promise<ReplicaSweep> {
  const root = replicasDir(dataDir);
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return { removed: 0, killed: 0 };
  }
  const bootId = readBootId();
  const pidNamespace = readPidNamespace();
  const sweep: ReplicaSweep = { removed: 0, killed: 0 };
  for (const name of names) {
    const path = join(root, name);
    if (path === resolve(ownPath) || !isRealDirectory(path)) continue;
    const lock = lockIfGone(path);
    if (!lock) continue;
    try {
      // Its recorded pids name its runners only here, in the pid namespace it ran in (another
      // container of this machine numbers its processes anew: the same pid, even started in the same
      // clock tick, is another process).
      const sameProcesses =
        bootId !== '' &&
        lock.holder.boot_id === bootId &&
        pidNamespace !== '' &&
        lock.holder.pid_ns === pidNamespace;
      if (!sameProcesses && (await options.holdsLease(lock.holder.worker_id))) continue;
      // Still holding the lock, so that a replica sweeping at the same time skips it. On another
      // machine or in another container its runners are out of reach (and ended with it, or with
      // that machine's boot or that container).
      if (sameProcesses) sweep.killed += killOrphanedRuns(path);
      rmSync(path, { recursive: true, force: true, maxRetries: 3 });
      sweep.removed += 1;
    } catch {
      // Cannot be removed (permissions), or the store could not be asked: it stays for the next start.
    } finally {
      lock.release();
    }
  }
  return sweep;
}

/**
 * Whether `path` is a directory itself, not a symbolic link: a replica makes its directory, so a link
 * is none of theirs, and the HOMEs, run records and processes of wherever it points are not swept.
 */
function isRealDirectory(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Sweeps (sweepGoneReplicaDirs) when `runOnce()` is called, at start before the engine, and every
 * `intervalMs` after: a replica that died is swept without waiting for another to start, its
 * orphaned runners killed about when its tasks' leases expire and other replicas run them again.
 */
export function startReplicaDirSweeper(
  options: SweepOptions & {
    dataDir: string;
    ownPath: string;
    intervalMs: number;
    logger: Logger;
    /** Told what each sweep removed and killed (the metrics count it). */
    onSwept?: (sweep: ReplicaSweep) => void;
  },
): PeriodicJob<ReplicaSweep> {
  return startPeriodicJob<ReplicaSweep>({
    async run() {
      const sweep = await sweepGoneReplicaDirs(options.dataDir, options.ownPath, options);
      if (sweep.removed > 0) {
        options.logger.warn(
          { replicas: sweep.removed, orphans: sweep.killed },
          'removed the runner HOMEs and run records of replicas that are gone',
        );
      }
      options.onSwept?.(sweep);
      return sweep;
    },
    intervalMs: options.intervalMs,
    onResult: () => {},
    onError: (error) =>
      options.logger.warn(
        { err: coerceError(error) },
        'replica directory sweep failed; retrying next interval',
      ),
  });
}

/**
 * Takes the lock of the replica directory `path` when its holder has ended; undefined when the lock is
 * held, or the directory has no lock file with a holder written in it (yet).
 */
function lockIfGone(path: string): { holder: Holder; release(): void } | undefined {
  let lock: SqliteDatabase.Database | undefined;
  try {
    lock = new SqliteDatabase(join(path, LOCK_FILE), { fileMustExist: true });
    lock.pragma('busy_timeout = 0');
    lock.exec('begin exclusive');
    // `*`: a lock file written before pid_ns was recorded has no such column (its holder's unknown).
    const holder = lock.prepare('select * from holder').get() as Holder | undefined;
    if (holder === undefined) throw new Error('no holder');
    const held = lock;
    return {
      holder,
      release() {
        held.exec('rollback');
        held.close();
      },
    };
  } catch {
    // Held (SQLITE_BUSY), not there, not a lock file, or no holder in it yet: not ours to sweep.
    if (lock?.inTransaction) lock.exec('rollback');
    lock?.close();
    return undefined;
  }
}

/** Whether the store holds an unexpired task lease of `workerId` (by the leases' own clock). */
// biome-ignore lint/suspicious/noExplicitAny: any schema with the tasks table
export async function holdsLiveLease(db: Kysely<any>, workerId: string): Promise<boolean> {
  const row = await db
    .selectFrom('tasks')
    .select('id')
    .where('lease_owner', '=', workerId)
    .where('lease_expires_at', '>', leaseNow(db, Date.now()))
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}
