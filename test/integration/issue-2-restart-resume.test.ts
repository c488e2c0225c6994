// Issue 2: a server killed with SIGKILL mid-run and restarted on the same data directory finishes
// every session; each task succeeds exactly once and every session's event log stays contiguous.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  killServeChildren,
  startServeChild as startChild,
  waitForExit,
  writeServeConfig,
} from '../fixtures/serve-child.ts';
import { readAllEvents, requestJson, waitForSession } from '../fixtures/server.ts';

interface Event {
  seq: number;
  type: string;
  data: { taskId?: string; to?: string };
}
interface Session {
  id: string;
  status: string;
  tasks: Array<{ id: string; name: string; status: string; attempts: number }>;
}

test('kill -9 mid-run, restart: every session completes, each task succeeds once, no event lost or doubled', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-restart-'));
  const configPath = writeServeConfig(dataDir, {
    workers: { concurrency: 4, pollIntervalMs: 200 },
    tasks: { maxAttempts: 5 },
    runners: { work: { command: ['sh', '-c', 'sleep 1; echo "done $MAOS_TASK_NAME"'] } },
  });
  const children: ChildProcess[] = [];
  t.after(async () => {
    await killServeChildren(children);
    rmSync(dataDir, { recursive: true, force: true });
  });

  const first = await startChild(configPath);
  children.push(first.child);
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) {
    const created = await requestJson<Session>(`${first.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: `session ${i}`,
        strategy: 'pipeline',
        agents: [
          { name: 'a', role: 'qa', task: 'step a', runner: 'work' },
          { name: 'b', role: 'qa', task: 'step b', runner: 'work' },
          { name: 'c', role: 'qa', task: 'step c', runner: 'work', depends_on: ['a', 'b'] },
        ],
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    ids.push(created.body.id);
  }
  // Kill once work is in flight: some task running, no session finished yet.
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const session = (await requestJson<Session>(`${first.url}/v1/sessions/${ids[0]}`)).body;
    if (session.tasks.some((task) => task.status === 'running')) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  first.child.kill('SIGKILL');
  await waitForExit(first.child);

  const second = await startChild(configPath);
  children.push(second.child);
  let rerun = 0;
  for (const id of ids) {
    const session = await waitForSession<Session>(second.url, id, undefined, 60_000);
    assert.equal(session.status, 'completed', JSON.stringify(session));
    for (const task of session.tasks) assert.equal(task.status, 'succeeded');
    rerun += session.tasks.filter((task) => task.attempts > 1).length;

    const events = await readAllEvents<Event>(second.url, id);
    assert.deepEqual(
      events.map((e) => e.seq),
      events.map((_, i) => i + 1),
      `session ${id}: seqs contiguous from 1, no duplicates`,
    );
    assert.equal(events.filter((e) => e.type === 'session.finished').length, 1);
    assert.equal(events.at(-1)?.type, 'session.finished');
    for (const task of session.tasks) {
      const succeeded = events.filter(
        (e) => e.type === 'task.status' && e.data.taskId === task.id && e.data.to === 'succeeded',
      );
      assert.equal(succeeded.length, 1, `task ${task.name} of ${id} succeeded exactly once`);
    }
  }

  assert.ok(rerun > 0, 'the kill interrupted at least one running task, which was run again');

  second.child.kill('SIGTERM');
  await waitForExit(second.child);
  assert.equal(second.child.exitCode, 0, 'SIGTERM stops the server gracefully with exit code 0');
});
