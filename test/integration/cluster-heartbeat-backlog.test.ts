// PostgreSQL: a replica whose write queue has fallen behind (many chatty runs: each output flush is a
// transaction of its own) keeps its leases. The heartbeat renews them beside the queue; queued
// behind the backlog, it came after the lease reaper's pass, which expired the leases of the live
// replica's runs and ran them again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ACTOR, createHarness } from '../fixtures/engine-harness.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { waitFor } from '../fixtures/wait-for.ts';

test('a write queue held up for longer than the lease does not cost a live run its lease', {
  timeout: 60_000,
}, async (t) => {
  const database = await createTestDatabase();
  t.after(() => database.drop());
  const h = await createHarness({
    storeUrl: database.url,
    runners: { work: { command: ['sh', '-c', 'sleep 4; echo done'] } },
    concurrency: 1,
    leaseSeconds: 2,
    maxAttempts: 3,
  });
  t.after(() => h.close());
  const { session } = await h.engine.service.createSession(ACTOR, {
    objective: 'backlog',
    agents: [{ name: 'a', role: 'qa', task: 't', runner: 'work' }],
  });
  await waitFor(async () => {
    const detail = await h.engine.service.getSession(ACTOR, session.id);
    return detail.tasks[0]?.status === 'running';
  }, 20_000);

  // The queue is busy for longer than the lease (one operation stands for a backlog of them; it
  // holds no lock, and stays below the server's bound on an idle transaction): the reaper's passes
  // and the run's finish wait behind it.
  let release!: () => void;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const busy = h.engine.queue.run(() => held);
  await new Promise((resolve) => setTimeout(resolve, 3500));
  release();
  await busy;

  const done = await h.waitForSession(session.id);
  assert.equal(done.status, 'completed');
  assert.equal(done.tasks[0]?.attempts, 1, 'the run kept its lease: it ran once');
  const events = await h.allEvents(session.id);
  assert.equal(
    events.filter((event) => event.type === 'task.status' && (event.data as { to?: string }).to === 'ready')
      .length,
    1,
    'made ready once, never again by a lease expiry',
  );
});
