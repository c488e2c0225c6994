// Cluster mode: the tasks of a killed replica that the lease reaper makes ready again are announced
// to every replica, so an idle one runs them at once, also when the replica that reaped them has no
// free slot (its reaper runs all the same) and the others poll rarely.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { isAlive } from '../fixtures/processes.ts';
import {
  killServeChildren,
  startServeChild,
  waitForExit,
  writeServeConfig,
} from '../fixtures/serve-child.ts';
import {
  readAllEvents,
  requestJson,
  startTestServer,
  TEST_RUNNERS,
  type TestServer,
} from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

interface Session {
  id: string;
  tasks: Array<{ id: string; status: string; attempts: number }>;
}

test('a task reaped by a busy replica is run at once by an idle one', { timeout: 180_000 }, async (t) => {
  const database = await createTestDatabase();
  const servers: TestServer[] = [];
  const children: ChildProcess[] = [];
  const runnerPids: number[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-reaped-'));
  t.after(async () => {
    await killServeChildren(children);
    for (const pid of runnerPids) if (isAlive(pid)) process.kill(-pid, 'SIGKILL');
    for (const server of servers) await server.close();
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const runners = { ...TEST_RUNNERS, long: { command: ['sleep', '120'] } };
  // Polls (and the notifier's sweeps) a minute apart: only an announcement wakes a replica in time.
  const workers = { concurrency: 1, pollIntervalMs: 60_000 };

  // The replica that dies, running the task.
  const dying = await startServeChild(
    writeServeConfig(dataDir, { store: { url: database.url }, workers, runners, tasks: { leaseSeconds: 2 } }),
  );
  children.push(dying.child);
  const created = await requestJson<Session>(`${dying.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'reaped', agents: [{ name: 'a', role: 'engineer', task: 'wait', runner: 'pid' }] },
  });
  assert.equal(created.status, 201);
  const id = created.body.id;
  const taskOf = async (server: TestServer) =>
    await server.app.database.db
      .selectFrom('tasks')
      .select(['status', 'lease_owner', 'attempts'])
      .where('session_id', '=', id)
      .executeTakeFirstOrThrow();

  // The reaper: its one slot busy with a long task of its own, its lease short so it reaps often.
  const reaper = await startTestServer({
    config: { store: { url: database.url }, workers, runners, tasks: { leaseSeconds: 2, maxAttempts: 3 } },
  });
  servers.push(reaper);
  const busy = await requestJson<Session>(`${reaper.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'busy', agents: [{ name: 'b', role: 'engineer', task: 'wait', runner: 'long' }] },
  });
  assert.equal(busy.status, 201);
  await waitFor(
    async () =>
      (await requestJson<Session>(`${reaper.url}/v1/sessions/${busy.body.id}`)).body.tasks[0]?.status ===
      'running',
    30_000,
    'the reaping replica running its own task',
  );
  const first = await waitFor(async () => {
    const row = await taskOf(reaper);
    return row.status === 'running' && row.lease_owner !== null ? row : undefined;
  }, 30_000);
  assert.equal(Number(first.attempts), 1);
  // The runner the dying replica leaves behind (killed after the test).
  const pidLine = await waitFor(async () => {
    const events = await readAllEvents<{ seq: number; type: string; data: { line?: string } }>(
      reaper.url,
      id,
    );
    return events.find((event) => event.type === 'task.output' && event.data.line?.startsWith('pid='));
  }, 30_000);
  runnerPids.push(Number(pidLine.data.line?.slice(4)));

  // The idle replica: its lease long, so its own reaper passes are a hundred seconds apart.
  const idle = await startTestServer({
    config: { store: { url: database.url }, workers, runners, tasks: { leaseSeconds: 300, maxAttempts: 3 } },
  });
  servers.push(idle);

  dying.child.kill('SIGKILL');
  await waitForExit(dying.child);
  const taken = await waitFor(
    async () => {
      const row = await taskOf(idle);
      return Number(row.attempts) === 2 && row.status === 'running' ? row : undefined;
    },
    30_000,
    'the idle replica running the reaped task',
  );
  const busyOwner = await reaper.app.database.db
    .selectFrom('tasks')
    .select('lease_owner')
    .where('session_id', '=', busy.body.id)
    .executeTakeFirstOrThrow();
  assert.ok(
    taken.lease_owner !== busyOwner.lease_owner && taken.lease_owner !== first.lease_owner,
    'run by the idle replica, not by the one that reaped it (whose slot is busy)',
  );
});
