// Cluster mode: leases are set and expired by the database server's clock, so a replica whose own
// clock runs ahead does not expire the healthy leases of the others (and run their tasks twice).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ACTOR, createHarness } from '../fixtures/engine-harness.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';

test('a replica whose clock runs 25 s ahead leaves the leases of another replica alone', {
  timeout: 60_000,
}, async (t) => {
  const database = await createTestDatabase();
  t.after(() => database.drop());
  const common = {
    storeUrl: database.url,
    leaseSeconds: 2,
    concurrency: 1,
    runners: { work: { command: ['sh', '-c', 'sleep 3; echo done'] } },
  };
  const honest = await createHarness({ ...common, workerId: 'honest' });
  t.after(() => honest.close());
  const { session } = await honest.engine.service.createSession(ACTOR, {
    objective: 'run once',
    agents: [{ name: 'a', role: 'engineer', task: 'work', runner: 'work' }],
  });
  // Started once the task runs on the honest replica: its reaper passes every 2/3 s meanwhile.
  const ahead = await createHarness({ ...common, workerId: 'ahead', now: () => Date.now() + 25_000 });
  t.after(() => ahead.close());

  const done = await honest.waitForSession(session.id, 30_000);
  assert.equal(done.status, 'completed', done.error ?? '');
  const [task] = done.tasks;
  assert.equal(task?.attempts, 1, 'the task ran once');
  const expiries = (await honest.allEvents(session.id)).filter(
    (event) => event.type === 'task.status' && String(event.data.reason ?? '').startsWith('lease expired'),
  );
  assert.deepEqual(expiries, [], 'no lease expired');
});
