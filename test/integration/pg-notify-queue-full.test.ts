// PostgreSQL's notification queue (one per server, shared by every database and application) held
// full by a listener that reads nothing: another application's session that LISTENs and then stays
// inside a transaction. A COMMIT that carries a notification then fails ("too many notifications in
// the NOTIFY queue"), and the cancel's transaction carries the stop of its session's runs on other
// replicas. The cancel is stored all the same, and the run on the other replica still stops: at
// its next lease renewal, which finds its task no longer leased.
//
// The queue is made small (max_notify_queue_pages, PostgreSQL 17+, settable only at server start)
// on a server private to this file, so filling it takes some 64 notifications; on the shared test
// server it would hold up every other test file's notifications.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { captureLog } from '../fixtures/log-capture.ts';
import { isAlive } from '../fixtures/processes.ts';
import { type RestartablePostgres, startRestartablePostgres } from '../fixtures/restartable-postgres.ts';
import { readAllEvents, requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

interface EventDto {
  seq: number;
  type: string;
  data: Record<string, unknown>;
}

interface SessionView {
  status: string;
  tasks: Array<{ status: string }>;
}

/** The smallest queue PostgreSQL allows: 64 pages of 8 KiB. */
const QUEUE_PAGES = 64;
// Renewed every second: the lease renewal is what stops the run here.
const SHORT_LEASE = { leaseSeconds: 3, maxAttempts: 2 };
// Long polls: nothing but the store moves work between the replicas within the test's waits.
const SLOW_POLL = 60_000;
// Prints its pid and sleeps in that process for longer than the test's waits.
const RUNNERS = { long: { command: ['sh', '-c', 'echo "pid=$$"; exec sleep 300'] } };

/**
 * Another application's listener that reads nothing (it LISTENs, then idles inside a transaction,
 * which keeps the queue's tail where it was), and notifications of its channel until the server
 * refuses more. Resolves with the listener, whose rollback lets the queue drain.
 */
async function fillNotificationQueue(url: string): Promise<pg.Client> {
  const listener = new pg.Client({ connectionString: url, application_name: 'other-app' });
  listener.on('error', () => undefined);
  await listener.connect();
  await listener.query('listen other_app');
  await listener.query('begin');
  await listener.query('select 1');
  const sender = new pg.Client({ connectionString: url });
  await sender.connect();
  try {
    const payload = 'x'.repeat(7900);
    for (let sent = 0; ; sent++) {
      assert.ok(sent < QUEUE_PAGES * 4, 'the notification queue never filled');
      const refused = await sender.query('select pg_notify($1, $2)', ['other_app', payload]).then(
        () => undefined,
        (error: { code?: string; message?: string }) => error,
      );
      if (refused) {
        assert.equal(refused.code, '54000', refused.message);
        assert.match(refused.message ?? '', /too many notifications in the NOTIFY queue/);
        break;
      }
    }
    const { rows } = await sender.query<{ usage: number }>('select pg_notification_queue_usage() as usage');
    assert.equal(rows[0]?.usage, 1);
  } finally {
    await sender.end();
  }
  return listener;
}

describe('a full PostgreSQL notification queue', { timeout: 120_000 }, () => {
  let database: RestartablePostgres;
  const servers: TestServer[] = [];
  before(async () => {
    database = await startRestartablePostgres({ flags: ['-c', `max_notify_queue_pages=${QUEUE_PAGES}`] });
  });
  after(async () => {
    await Promise.allSettled(servers.map((server) => server.close()));
    await database?.close();
  });

  test('a cancel is stored, and the run on another replica stops at its lease renewal', async (t) => {
    const config = (concurrency: number, pollIntervalMs = SLOW_POLL) => ({
      store: { url: database.url, poolSize: 4 },
      tasks: SHORT_LEASE,
      workers: { concurrency, pollIntervalMs },
      runners: RUNNERS,
    });
    // The API-only replica claims nothing; its LISTEN connection is checked every 2 × 100 ms.
    const log = captureLog<{ message: string; 'log.level': string; queueUsage?: number }>();
    const api = await startTestServer({
      config: { ...config(0, 100), logLevel: 'info' },
      logDestination: log.destination,
    });
    servers.push(api);
    const worker = await startTestServer({ config: config(2) });
    servers.push(worker);

    const created = await requestJson<{ id: string }>(`${api.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'cancel with a full notification queue',
        agents: [{ name: 'a', role: 'engineer', task: 't', runner: 'long' }],
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const sessionId = created.body.id;
    const pid = await waitFor(async () => {
      for (const event of await readAllEvents<EventDto>(api.url, sessionId)) {
        const match = /pid=(\d+)/.exec(JSON.stringify(event.data));
        if (match) return Number(match[1]);
      }
      return undefined;
    }, 30_000);
    t.after(() => {
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    });

    const listener = await fillNotificationQueue(database.url);
    t.after(() => listener.end().catch(() => undefined));
    const told = (text: string) => log.lines.filter((line) => line.message.includes(text));
    // The operator is told, once, why notifications stop.
    await waitFor(() => told('notification queue is nearly full').length > 0, 30_000, 'the warning');

    const cancelled = await requestJson<SessionView>(`${api.url}/v1/sessions/${sessionId}/cancel`, {
      method: 'POST',
    });
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
    assert.equal(cancelled.body.status, 'cancelled');
    // Stored: the other replica reads it so.
    const seen = await requestJson<SessionView>(`${worker.url}/v1/sessions/${sessionId}`);
    assert.equal(seen.body.status, 'cancelled');
    assert.deepEqual(
      seen.body.tasks.map((task) => task.status),
      ['cancelled'],
    );
    const finished = (await readAllEvents<EventDto>(worker.url, sessionId)).filter(
      (event) => event.type === 'session.finished',
    );
    assert.equal(finished.length, 1);

    // No notification reached the worker replica (the queue is still full), yet its run stops.
    assert.equal(await queueUsage(database.url), 1);
    await waitFor(() => !isAlive(pid), 30_000, 'the runner process on the worker replica to be killed');

    const [warning] = told('notification queue is nearly full');
    assert.equal(warning?.['log.level'], 'warn');
    assert.equal(warning?.queueUsage, 1);

    // The other application's session goes: the queue drains, and the operator is told so, once.
    await listener.end();
    await waitFor(() => told('notification queue has room again').length > 0, 30_000, 'the queue to drain');
    assert.equal(told('notification queue is nearly full').length, 1);
  });
});

async function queueUsage(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ usage: number }>('select pg_notification_queue_usage() as usage');
    return rows[0]?.usage ?? 0;
  } finally {
    await client.end();
  }
}
