// PostgreSQL: a replica told to stop the runs of a session (its stop channel woke, engine/session-stop.ts)
// checks that the session has ended before it aborts them. A session cancelled and then deleted on
// another replica before that check is gone, not running: its runs here stop too, instead of going
// on until their next lease renewal.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRuntimeRegistry } from '../../src/agents/runtimes/runtime.ts';
import { createEngine } from '../../src/engine/index.ts';
import { createLocalNotifier, sessionStopChannel } from '../../src/engine/notifier.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createDatabase } from '../../src/store/db.ts';
import { ACTOR } from '../fixtures/engine-harness.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { waitFor } from '../fixtures/wait-for.ts';

test('PostgreSQL: a run whose session was cancelled and deleted elsewhere stops when its stop channel wakes', async (t) => {
  const database = await createTestDatabase();
  t.after(() => database.drop());
  const handle = createDatabase({
    dataDir: '.',
    store: {
      url: database.url,
      synchronous: 'full',
      busyTimeoutMs: 5000,
      poolSize: 4,
      connectTimeoutMs: 3000,
    },
  });
  t.after(() => handle.close());
  let started = 0;
  let aborted = 0;
  const runtimes = createRuntimeRegistry();
  runtimes.registerLlm({
    kind: 'llm',
    run: (_task, ctx) =>
      new Promise((_resolve, reject) => {
        started++;
        ctx.signal.addEventListener('abort', () => {
          aborted++;
          reject(ctx.signal.reason);
        });
      }),
  });
  const replica = (workerId: string, concurrency: number, notifier = createLocalNotifier()) =>
    createEngine({
      // Leases renewed every 200 s: within the test only the stop channel can stop the run. The
      // worker finds the session by its poll (the replicas share no notifier).
      config: {
        workers: { concurrency, pollIntervalMs: 100 },
        tasks: { leaseSeconds: 600, maxAttempts: 3 },
        runners: {},
      },
      db: handle.db,
      dialect: handle.dialect,
      workerId,
      logger: createLogger({ level: 'silent' }),
      runtimes,
      notifier,
    });
  // The worker's notifier is the test's: it wakes the stop channel as PostgreSQL's would deliver
  // the NOTIFY of the cancel, here only after the deletion has committed.
  const workerNotifier = createLocalNotifier();
  const worker = replica('worker', 1, workerNotifier);
  const api = replica('api', 0);
  worker.start();
  t.after(() => worker.stop({ graceMs: 0 }));
  t.after(() => api.stop({ graceMs: 0 }));
  const { session } = await api.service.createSession(ACTOR, {
    objective: 'deleted while running elsewhere',
    agents: [{ name: 'a', role: 'engineer', task: 't' }],
  });
  await waitFor(() => started === 1, 10_000, 'the run on the worker');
  await api.service.cancelSession(ACTOR, session.id);
  await api.service.deleteSession(ACTOR, session.id);
  workerNotifier.publish(sessionStopChannel(session.id));
  await waitFor(() => aborted === 1, 10_000, 'the run of the deleted session to stop');
  assert.equal(started, 1);
});
