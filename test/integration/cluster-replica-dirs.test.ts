// Replicas sharing a data directory on one PostgreSQL database: one is killed (SIGKILL) while its
// runner runs. A replica started afterwards kills that orphaned runner and removes its HOME, while
// the runner of a live replica on the same data directory goes on with its HOME untouched.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { holdsLiveLease } from '../../src/agents/runtimes/command/replica-dirs.ts';
import { recordRun } from '../../src/agents/runtimes/command/run-records.ts';
import { scrapeSample } from '../fixtures/metrics-scrape.ts';
import { isAlive, spawnDetachedGroup, waitUntilGone } from '../fixtures/processes.ts';
import { useReplicaSuite } from '../fixtures/replica-suite.ts';
import { killServeChildren, startServeChild, writeServeConfig } from '../fixtures/serve-child.ts';
import { readAllEvents, requestJson } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

interface EventDto {
  seq: number;
  type: string;
  data: Record<string, unknown>;
}

// Starts a process in a session of its own (as a daemon does: out of the runner's group), prints
// its pid and its own pid and HOME, then sleeps in that process for longer than the test.
const RUNNERS = {
  home: {
    command: ['sh', '-c', 'setsid sleep 120 & echo "pid=$$ home=$HOME escaped=$!"; exec sleep 120'],
  },
};

async function submit(url: string): Promise<string> {
  const created = await requestJson<{ id: string }>(`${url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'replica dirs', agents: [{ name: 'a', role: 'engineer', task: 't', runner: 'home' }] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body.id;
}

/** The pid and HOME the session's runner printed, and the pid of the process that left its group. */
function runOf(url: string, sessionId: string): Promise<{ pid: number; home: string; escaped: number }> {
  return waitFor(
    async () => {
      for (const event of await readAllEvents<EventDto>(url, sessionId)) {
        const match = /pid=(\d+) home=(\S+) escaped=(\d+)/.exec(String(event.data.line ?? ''));
        if (event.type === 'task.output' && match)
          return { pid: Number(match[1]), home: match[2]!, escaped: Number(match[3]) };
      }
      return undefined;
    },
    60_000,
    `the runner of ${sessionId}`,
  );
}

describe('cluster: a killed replica leaves no runner or HOME behind', { timeout: 240_000 }, () => {
  const suite = useReplicaSuite();

  test("the next replica to start removes the killed one's leftovers, never a live one's", async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'maos-shared-'));
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));
    const config = (concurrency: number) => ({
      store: { url: suite.database.url, poolSize: 4 },
      // Long leases: no replica takes over the killed one's task during the test.
      tasks: { leaseSeconds: 300, maxAttempts: 2 },
      workers: { concurrency, pollIntervalMs: 200 },
      runners: RUNNERS,
    });
    // What a replica of a version before replica directories writes: a HOME and a record of its
    // live runner straight under the data directory, with no lock to tell whether it still runs.
    const legacyRunner = spawnDetachedGroup('exec sleep 120');
    t.after(legacyRunner.kill);
    const legacyHome = join(dataDir, 'homes', 'maos-home-Old123');
    mkdirSync(legacyHome, { recursive: true });
    recordRun(dataDir, 'task-old-1', legacyRunner.pid, legacyHome);
    // The replica to be killed: one slot, busy with its task, so the next session runs elsewhere.
    const configPath = writeServeConfig(dataDir, { ...config(1), logLevel: 'silent' });
    const doomed = await startServeChild(configPath);
    t.after(() => killServeChildren([doomed.child]));
    const first = await submit(doomed.url);
    const orphan = await runOf(doomed.url, first);

    const live = await suite.start({ dataDir, config: config(1) });
    const second = await submit(live.url);
    const running = await runOf(live.url, second);
    t.after(() => {
      for (const { pid, escaped } of [orphan, running])
        for (const each of [pid, escaped]) if (isAlive(each)) process.kill(each, 'SIGKILL');
    });
    assert.notEqual(orphan.home, running.home);

    doomed.child.kill('SIGKILL');
    await waitFor(() => doomed.child.exitCode !== null || doomed.child.signalCode !== null);
    assert.equal(isAlive(orphan.pid), true, 'a runner outlives its killed server');
    assert.equal(existsSync(orphan.home), true);

    // A replica (re)started on the data directory sweeps before its engine starts.
    const next = await suite.start({ dataDir, config: config(1) });
    assert.equal(await waitUntilGone(orphan.pid), true, "the killed replica's runner was not stopped");
    assert.equal(
      await waitUntilGone(orphan.escaped),
      true,
      "the killed replica's runner's daemon was not stopped",
    );
    assert.equal(existsSync(orphan.home), false, "the killed replica's HOME was not removed");
    assert.equal(isAlive(running.pid), true, "the live replica's runner was stopped");
    assert.equal(isAlive(running.escaped), true, "the live replica's runner's daemon was stopped");
    assert.equal(existsSync(running.home), true, "the live replica's HOME was removed");
    // Counted by the replica that swept, for an operator to see how often replicas die mid-run.
    assert.equal(await scrapeSample(next.url, 'maos_orphaned_runners_killed_total'), 1);
    assert.equal(await scrapeSample(next.url, 'maos_replica_directories_removed_total'), 1);
    assert.equal(await scrapeSample(live.url, 'maos_replica_directories_removed_total'), 0);
    // An older version's HOME and run record are never swept in PostgreSQL mode (ADR 0012).
    assert.equal(isAlive(legacyRunner.pid), true, "an older version's runner was stopped");
    assert.equal(existsSync(legacyHome), true, "an older version's HOME was removed");
    assert.equal(existsSync(join(dataDir, 'runs', 'task-old-1.json')), true);

    // The lease a sweep asks about for a replica of another machine is the one its engine holds:
    // the worker id its directory's lock records (host:pid:<the directory's last 12 characters>).
    const { db } = live.app.database;
    const task = await db
      .selectFrom('tasks')
      .select(['id', 'lease_owner'])
      .where('session_id', '=', second)
      .executeTakeFirstOrThrow();
    const owner = String(task.lease_owner);
    const names = readdirSync(join(dataDir, 'replicas'));
    assert.equal(names.filter((name) => owner.endsWith(`:${name.slice(-12)}`)).length, 1, owner);
    assert.equal(await holdsLiveLease(db, owner), true);
    assert.equal(await holdsLiveLease(db, 'another-host:1:000000000000'), false);
    await db.updateTable('tasks').set({ lease_expires_at: 1 }).where('id', '=', task.id).execute();
    assert.equal(await holdsLiveLease(db, owner), false, 'an expired lease is no sign of life');
  });
});

describe('cluster: a live replica sweeps a killed one without a restart', { timeout: 240_000 }, () => {
  const suite = useReplicaSuite();

  test("once a lease after the kill, the killed replica's runner and HOME are gone", async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'maos-shared-'));
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));
    // Leases of 2 s: the live replica sweeps every 2 s, and runs the killed one's task again.
    const config = {
      store: { url: suite.database.url, poolSize: 4 },
      tasks: { leaseSeconds: 2, maxAttempts: 3 },
      workers: { concurrency: 1, pollIntervalMs: 200 },
      runners: RUNNERS,
    };
    const doomed = await startServeChild(writeServeConfig(dataDir, { ...config, logLevel: 'silent' }));
    t.after(() => killServeChildren([doomed.child]));
    const sessionId = await submit(doomed.url);
    const orphan = await runOf(doomed.url, sessionId);
    t.after(() => {
      for (const each of [orphan.pid, orphan.escaped]) if (isAlive(each)) process.kill(each, 'SIGKILL');
    });
    // Started while the other lives: its start sweep leaves the other's directory alone.
    const live = await suite.start({ dataDir, config });
    assert.equal(isAlive(orphan.pid), true);
    assert.equal(existsSync(orphan.home), true);

    doomed.child.kill('SIGKILL');
    assert.equal(
      await waitUntilGone(orphan.pid, 60_000),
      true,
      "the killed replica's runner was not stopped",
    );
    assert.equal(
      await waitUntilGone(orphan.escaped),
      true,
      "the killed replica's runner's daemon was not stopped",
    );
    await waitFor(() => !existsSync(orphan.home), 10_000, "the killed replica's HOME to go");
    assert.equal(await scrapeSample(live.url, 'maos_orphaned_runners_killed_total'), 1);
    assert.equal(await scrapeSample(live.url, 'maos_replica_directories_removed_total'), 1);
    // The task runs again on the live replica, in a HOME of its own.
    const names = readdirSync(join(dataDir, 'replicas'));
    assert.equal(names.length, 1, names.join(', '));
    const again = await waitFor(async () => {
      for (const event of await readAllEvents<EventDto>(live.url, sessionId)) {
        const match = /home=(\S+) escaped=(\d+)/.exec(String(event.data.line ?? ''));
        if (match && match[1] !== orphan.home) return { home: match[1]!, escaped: Number(match[2]) };
      }
      return undefined;
    }, 30_000);
    t.after(() => {
      if (isAlive(again.escaped)) process.kill(again.escaped, 'SIGKILL');
    });
    assert.ok(again.home.startsWith(join(dataDir, 'replicas', names[0]!, 'homes')), again.home);
  });
});
