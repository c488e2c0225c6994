// `maos doctor` data-dir check, permissions part: the data directory and the SQLite database hold
// every tenant's sessions, API key hashes and sealed secrets, so modes looser than the ones a new
// install creates (0750 and 0600, store/db.ts) are worth a warning with a fix the operator can run.
// A volume root MAOS does not own (a Kubernetes emptyDir or PVC, owned by root) cannot be chmod-ed by
// it: there only what lets someone else replace MAOS's files is reported, with the volume's own fix.
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

/** Who runs the check: the server's user when run as the doctor is documented to (same uid). */
export interface CheckingUser {
  uid: number;
  /** Primary and supplementary groups (a Kubernetes fsGroup is a supplementary one). */
  gids: readonly number[];
}

/** The user of this process; undefined where POSIX ids do not exist (Windows). */
function currentUser(): CheckingUser | undefined {
  if (!process.getuid || !process.getgid || !process.getgroups) return undefined;
  return { uid: process.getuid(), gids: [process.getgid(), ...process.getgroups()] };
}

const SETGID = 0o2000;
const STICKY = 0o1000;

/**
 * Compares the data directory and, when given and present, the SQLite database (with its -wal/-shm)
 * against 0750 and 0600. Undefined when nothing is reported. A directory `user` owns (or any, for
 * root) is held to 0750, except the group bits of a setgid directory of one of the user's groups (a
 * Kubernetes fsGroup volume: kubelet gives the group rwx and setgid, and puts them back at the next
 * mount). A directory owned by another user, or one owned by root that `user` cannot chmod, is reported
 * only when someone else can replace the files in it.
 */
export function findLoosePermissions(
  dataDir: string,
  databasePath?: string,
  user: CheckingUser | undefined = currentUser(),
): LoosePermissions | undefined {
  const problems: string[] = [];
  /** Commands the user can run; `rootFixes` need root or the volume's definition. */
  const fixes: string[] = [];
  const rootFixes: string[] = [];
  const dir = statSync(dataDir);
  const dirMode = dir.mode & 0o7777;
  const ourGroup = user !== undefined && (dirMode & SETGID) !== 0 && user.gids.includes(dir.gid);
  if (user !== undefined && user.uid !== 0 && dir.uid !== user.uid && dir.uid !== 0) {
    problems.push(
      `${dataDir} is owned by uid ${dir.uid}, not by uid ${user.uid} that runs MAOS (the owner can replace its files)`,
    );
    rootFixes.push(
      `as root: chown ${user.uid} ${dataDir}; in Kubernetes run the pod as the volume's owner (the chart's podSecurityContext.runAsUser and fsGroup)`,
    );
  } else if (user === undefined || user.uid === 0 || dir.uid === user.uid) {
    const allowed = ourGroup ? DATA_DIR_MODE | 0o070 : DATA_DIR_MODE;
    if ((dirMode & 0o777 & ~allowed) !== 0) {
      problems.push(
        `${dataDir} is ${formatMode(dirMode)} (${describeAccess(dirMode, allowed, 'searchable')})`,
      );
      fixes.push(`chmod ${ourGroup ? 'o-rwx' : '750'} ${dataDir}`);
    }
  } else {
    // Owned by root, not chmod-able by the user: a mounted volume's root. Its read and search bits
    // expose no data (the database is 0600, checked below); writing lets others replace files, unless
    // the sticky bit keeps them from renaming or deleting what MAOS owns.
    const sticky = (dirMode & STICKY) !== 0;
    const worldWritable = (dirMode & 0o002) !== 0;
    if ((dirMode & 0o020) !== 0 && !user.gids.includes(dir.gid) && !sticky && !worldWritable) {
      problems.push(
        `${dataDir} is ${formatMode(dirMode)} and owned by root (group-writable by gid ${dir.gid}, not a group of uid ${user.uid})`,
      );
      rootFixes.push(
        `as root: chgrp ${user.gids[0]} ${dataDir}; in Kubernetes set the pod's securityContext.fsGroup to the group MAOS runs with (the chart sets 1000)`,
      );
    }
    // World-writable and setgid to the user's group is what kubelet makes of an emptyDir with fsGroup
    // (2777): only this pod's containers see it.
    if (worldWritable && !ourGroup && !sticky) {
      problems.push(
        `${dataDir} is ${formatMode(dirMode)} and owned by root (world-writable without the sticky bit: anyone can rename or delete its files)`,
      );
      rootFixes.push(
        `as root: chown ${user.uid} ${dataDir} && chmod 750 ${dataDir}; in Kubernetes set the pod's securityContext.fsGroup (the chart sets 1000)`,
      );
    }
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
    fix: [
      ...(fixes.length > 0
        ? [`${fixes.join(' && ')} (new installs use 0750 for the directory, 0600 for the database)`]
        : []),
      ...rootFixes,
    ].join('; '),
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
