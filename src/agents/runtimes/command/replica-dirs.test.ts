// Replica directories (PostgreSQL mode): a replica's directory is kept while its process lives, even
// when another replica of the same data directory sweeps; once its process is gone, the next sweep
// kills its runners still running and removes its HOMEs and run records. A replica of another machine
// is swept only when the store holds no lease of its.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import { isAlive, spawnDetachedGroup, waitUntilGone } from '../../../../test/fixtures/processes.ts';
import type { AppError } from '../../../errors/app-error.ts';
import { claimReplicaDir, sweepGoneReplicaDirs } from './replica-dirs.ts';
import { recordRun, taskHomesDir } from './run-records.ts';

const MODULE = new URL('./replica-dirs.ts', import.meta.url).href;
const noLease = { holdsLease: async () => false };

/** Another process that claims a replica directory of `dataDir` and holds it until killed. */
async function startOtherReplica(dataDir: string): Promise<{ path: string; kill(): Promise<void> }> {
  const script = `const { claimReplicaDir } = await import(${JSON.stringify(MODULE)});
const dir = await claimReplicaDir(process.argv[1]);
process.stdout.write(dir.path + '\\n');
setInterval(() => {}, 60_000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, dataDir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const path = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.once('exit', (code) => reject(new Error(`the other replica exited with ${code}`)));
  });
  return {
    path,
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** What a replica's runner leaves in its directory: a HOME with a cache, and its run record. */
function leaveRun(replicaPath: string, pid: number): { home: string; stray: string } {
  const homes = taskHomesDir(replicaPath);
  mkdirSync(homes, { recursive: true, mode: 0o700 });
  const home = mkdtempSync(join(homes, 'maos-home-'));
  mkdirSync(join(home, '.npm'));
  writeFileSync(join(home, '.npm', 'entry'), 'x');
  recordRun(replicaPath, 'task-1-1', pid, home);
  // A HOME whose runner exited (record forgotten) before the replica could remove it.
  const stray = mkdtempSync(join(homes, 'maos-home-'));
  return { home, stray };
}

/**
 * A gone replica's directory as one on another machine (another boot id) left it, or one of this
 * machine in another pid namespace (another container) when `pidNamespace` is given.
 */
function writeGoneReplica(dataDir: string, name: string, workerId: string, pidNamespace?: string): string {
  const path = join(dataDir, 'replicas', name);
  mkdirSync(path, { recursive: true });
  const lock = new SqliteDatabase(join(path, 'replica.lock'));
  lock.exec(
    'create table holder (worker_id text not null, boot_id text not null, pid_ns text not null, pid integer not null)',
  );
  const bootId =
    pidNamespace === undefined
      ? 'another-machine'
      : readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  lock.prepare('insert into holder values (?, ?, ?, ?)').run(workerId, bootId, pidNamespace ?? '', 1);
  lock.close();
  return path;
}

test("a live replica's directory survives another's sweep; once its process is gone, its runners and HOMEs go", async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-replicas-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const other = await startOtherReplica(dataDir);
  t.after(other.kill);
  const orphan = spawnDetachedGroup('sleep 30 & exec sleep 30');
  t.after(orphan.kill);
  const { home, stray } = leaveRun(other.path, orphan.pid);
  const own = await claimReplicaDir(dataDir);
  t.after(() => own.release());

  // The other process lives: nothing of its goes, and no lease is asked for on this machine.
  const asked: string[] = [];
  const holdsLease = async (workerId: string) => {
    asked.push(workerId);
    return false;
  };
  assert.deepEqual(await sweepGoneReplicaDirs(dataDir, own.path, { holdsLease }), { removed: 0, killed: 0 });
  assert.equal(existsSync(home), true);
  assert.equal(existsSync(stray), true);
  assert.equal(isAlive(orphan.pid), true);

  // Killed (SIGKILL: no shutdown): its runner group is killed, its directory removed; ours stays.
  await other.kill();
  assert.deepEqual(await sweepGoneReplicaDirs(dataDir, own.path, { holdsLease }), { removed: 1, killed: 1 });
  assert.equal(await waitUntilGone(orphan.pid), true, "the gone replica's runner was killed");
  assert.equal(existsSync(home), false);
  assert.equal(existsSync(stray), false, 'a HOME its runner had left unrecorded goes too');
  assert.equal(existsSync(other.path), false);
  assert.equal(existsSync(own.path), true);
  assert.deepEqual(asked, [], 'a replica of this machine is judged by its lock alone');
});

test('replicas in one process: a held directory stays; a stopped one is removed, or swept when a run was left', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-replicas-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const first = await claimReplicaDir(dataDir);
  const second = await claimReplicaDir(dataDir);
  t.after(() => second.release());
  assert.notEqual(first.workerId, second.workerId);
  // Twice: closing the probe's connection must not drop the lock this process holds on the file.
  assert.equal((await sweepGoneReplicaDirs(dataDir, second.path, noLease)).removed, 0);
  assert.equal((await sweepGoneReplicaDirs(dataDir, second.path, noLease)).removed, 0);
  assert.equal(existsSync(first.path), true);

  // A clean stop removes the directory.
  first.release();
  assert.equal(existsSync(first.path), false);

  // A stop that left a run record (a runner that did not stop) keeps it for the next sweep.
  const third = await claimReplicaDir(dataDir);
  const orphan = spawnDetachedGroup('exec sleep 30');
  t.after(orphan.kill);
  leaveRun(third.path, orphan.pid);
  third.release();
  assert.equal(existsSync(third.path), true);
  assert.deepEqual(await sweepGoneReplicaDirs(dataDir, second.path, noLease), { removed: 1, killed: 1 });
  assert.equal(await waitUntilGone(orphan.pid), true);
  assert.deepEqual(readdirSync(join(dataDir, 'replicas')), [second.path.split('/').at(-1)]);
});

test("another machine's gone replica is removed only without a live lease, its processes left alone", async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-replicas-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const own = await claimReplicaDir(dataDir);
  t.after(() => own.release());
  const path = writeGoneReplica(dataDir, 'elsewhere', 'host-b:42:abc');
  // Its pid means nothing here: a process of this machine that happens to have it is not touched.
  const bystander = spawnDetachedGroup('exec sleep 30');
  t.after(bystander.kill);
  leaveRun(path, bystander.pid);

  const leased = { holdsLease: async (workerId: string) => workerId === 'host-b:42:abc' };
  assert.deepEqual(await sweepGoneReplicaDirs(dataDir, own.path, leased), { removed: 0, killed: 0 });
  assert.equal(
    existsSync(path),
    true,
    'a replica holding a lease may be alive on a file system without shared locks',
  );

  assert.deepEqual(await sweepGoneReplicaDirs(dataDir, own.path, noLease), { removed: 1, killed: 0 });
  assert.equal(existsSync(path), false);
  assert.equal(isAlive(bystander.pid), true);
});

test("a gone replica of another container on this machine: its pids are another namespace's, no process here is killed", async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-replicas-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const own = await claimReplicaDir(dataDir);
  t.after(() => own.release());
  assert.match(readlinkSync('/proc/self/ns/pid'), /^pid:\[\d+\]$/);
  const path = writeGoneReplica(dataDir, 'container-b', 'pod-b:1:abc', 'pid:[1]');
  // Its runner's pid and start time recorded as a process of ours has them (as the same pid started
  // in the same clock tick in both containers would): the number names another process here.
  const bystander = spawnDetachedGroup('exec sleep 30');
  t.after(bystander.kill);
  leaveRun(path, bystander.pid);

  const leased = { holdsLease: async (workerId: string) => workerId === 'pod-b:1:abc' };
  assert.deepEqual(await sweepGoneReplicaDirs(dataDir, own.path, leased), { removed: 0, killed: 0 });
  assert.equal(existsSync(path), true, 'its runners are out of reach: the lease says whether they may run');
  assert.deepEqual(await sweepGoneReplicaDirs(dataDir, own.path, noLease), { removed: 1, killed: 0 });
  assert.equal(existsSync(path), false);
  assert.equal(isAlive(bystander.pid), true);
});

test('a symbolic link under replicas/ is not followed: the directory it names keeps its HOMEs, runs and processes', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-replicas-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const own = await claimReplicaDir(dataDir);
  t.after(() => own.release());
  // A gone replica's directory as this machine leaves it, but outside the replicas directory.
  const elsewhere = await claimReplicaDir(join(dataDir, 'elsewhere'));
  const orphan = spawnDetachedGroup('exec sleep 30');
  t.after(orphan.kill);
  const { home, stray } = leaveRun(elsewhere.path, orphan.pid);
  elsewhere.release();
  symlinkSync(elsewhere.path, join(dataDir, 'replicas', 'link'));

  assert.deepEqual(await sweepGoneReplicaDirs(dataDir, own.path, noLease), { removed: 0, killed: 0 });
  assert.equal(existsSync(home), true);
  assert.equal(existsSync(stray), true);
  assert.equal(readdirSync(join(elsewhere.path, 'runs')).length, 1);
  assert.equal(isAlive(orphan.pid), true);
  assert.equal(existsSync(join(dataDir, 'replicas', 'link')), true, 'not ours to remove either');
});

test('a directory without a written lock (a replica starting) or with a foreign file is left alone', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-replicas-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const own = await claimReplicaDir(dataDir);
  t.after(() => own.release());
  const starting = join(dataDir, 'replicas', 'starting');
  mkdirSync(starting);
  const empty = join(dataDir, 'replicas', 'empty-lock');
  mkdirSync(empty);
  new SqliteDatabase(join(empty, 'replica.lock')).close();
  const foreign = join(dataDir, 'replicas', 'foreign');
  mkdirSync(foreign);
  writeFileSync(join(foreign, 'replica.lock'), 'not a lock file');
  writeFileSync(join(dataDir, 'replicas', 'notes.txt'), 'x');

  assert.deepEqual(await sweepGoneReplicaDirs(dataDir, own.path, noLease), { removed: 0, killed: 0 });
  for (const path of [starting, empty, foreign]) assert.equal(existsSync(path), true, path);
  // No replicas directory at all: nothing to do.
  assert.deepEqual(await sweepGoneReplicaDirs(join(dataDir, 'none'), own.path, noLease), {
    removed: 0,
    killed: 0,
  });
});

test('a missing data directory is created as the store creates it; one that cannot be written stops the start', async (t) => {
  const parent = mkdtempSync(join(tmpdir(), 'maos-replicas-'));
  t.after(() => rmSync(parent, { recursive: true, force: true }));
  const dataDir = join(parent, 'data');
  const own = await claimReplicaDir(dataDir);
  t.after(() => own.release());
  // At most 0750 (the umask may take more away), and the replica's own for its user only.
  assert.equal(statSync(dataDir).mode & 0o777 & ~0o750, 0);
  assert.equal(statSync(join(dataDir, 'replicas')).mode & 0o777 & ~0o750, 0);
  assert.equal(statSync(own.path).mode & 0o077, 0);
  await assert.rejects(claimReplicaDir('/dev/null/data'), (error: AppError) => {
    assert.equal(error.code, 'STORE_UNAVAILABLE');
    assert.match(error.message, /Cannot create the replica directory \/dev\/null\/data\/replicas\//);
    return true;
  });
});
