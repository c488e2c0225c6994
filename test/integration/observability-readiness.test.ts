// Readiness watches the worker loop: /readyz on a live server reports the loop's heartbeat, and a
// loop whose claim round hangs (a stalled loop) fails the `worker` check once its beat is too old.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createRuntimeRegistry } from '../../src/agents/runtimes/runtime.ts';
import { workerBeatMaxAgeMs } from '../../src/app.ts';
import { checkServerReadiness } from '../../src/cli/ops/doctor-readiness.ts';
import { createLocalNotifier } from '../../src/engine/notifier.ts';
import { createScheduler } from '../../src/engine/scheduler.ts';
import { createReadinessChecks } from '../../src/observability/health.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createDatabase } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { createWriteQueue } from '../../src/store/write-queue.ts';
import { requestJson, startTestServer } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

interface Readiness {
  status: string;
  checks: Record<string, { ok: boolean; detail: string }>;
}

describe('readiness: worker loop heartbeat', () => {
  test('a live server reports the worker check ok, and the gauge says so', async () => {
    const server = await startTestServer();
    try {
      const ready = await requestJson<Readiness>(`${server.url}/readyz`);
      assert.equal(ready.status, 200, JSON.stringify(ready.body));
      assert.equal(ready.body.checks.worker?.ok, true);
      assert.match(ready.body.checks.worker?.detail ?? '', /worker loop beat \d+ s ago/);
      const scrape = await fetch(`${server.url}/metrics`).then((response) => response.text());
      assert.match(scrape, /maos_readiness_check_passing\{check="worker"\} 1/);
      // `maos doctor --server` shows the same checks.
      const doctor = await checkServerReadiness(server.url, 5000);
      assert.equal(doctor.status, 'pass', doctor.message);
      assert.match(doctor.message, /worker: worker loop beat \d+ s ago/);
    } finally {
      await server.close();
    }
  });

  test('an API-only process (no task slots) passes the worker check', async () => {
    const server = await startTestServer({ config: { workers: { concurrency: 0 } } });
    try {
      const ready = await requestJson<Readiness>(`${server.url}/readyz`);
      assert.equal(ready.status, 200);
      assert.match(ready.body.checks.worker?.detail ?? '', /API only/);
    } finally {
      await server.close();
    }
  });

  test('the bound is the lease length, or three poll intervals when that is longer', () => {
    assert.equal(
      workerBeatMaxAgeMs({
        workers: { concurrency: 1, pollIntervalMs: 1000 },
        tasks: { leaseSeconds: 30, maxAttempts: 3 },
      }),
      30_000,
    );
    assert.equal(
      workerBeatMaxAgeMs({
        workers: { concurrency: 1, pollIntervalMs: 20_000 },
        tasks: { leaseSeconds: 30, maxAttempts: 3 },
      }),
      60_000,
    );
  });

  test('a stalled loop (its claim round hangs) fails the check with detail, and recovers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-heartbeat-'));
    const database = createDatabase({ dataDir: dir, store: { busyTimeoutMs: 1000, synchronous: 'normal' } });
    let clock = 1_000_000;
    const now = () => clock;
    const queue = createWriteQueue({ db: database.db, dialect: 'sqlite' });
    const scheduler = createScheduler({
      db: database.db,
      dialect: 'sqlite',
      queue,
      notifier: createLocalNotifier(),
      runtimes: createRuntimeRegistry(),
      logger: createLogger({ level: 'silent' }),
      workerId: 'heartbeat-test',
      concurrency: 2,
      leaseMs: 5000,
      pollIntervalMs: 20,
      now,
    });
    const readiness = createReadinessChecks({
      db: database.db,
      worker: { slots: 2, lastBeatAt: () => scheduler.lastBeatAt(), maxAgeMs: 5000 },
      now,
      // The blocked queue holds SQLite's connection, so the database check waits: keep that short.
      timeoutMs: 200,
    });
    let release: (() => void) | undefined;
    try {
      await migrateToLatest(database.db);
      assert.deepEqual((await readiness()).worker, { ok: false, detail: 'worker loop has not started' });
      scheduler.start();
      await waitFor(async () => (await readiness()).worker?.ok === true);

      // The write queue is blocked: every claim round now waits, so the loop stops beating.
      const blocked = queue.run(() => new Promise<void>((resolve) => (release = resolve)));
      await waitFor(async () => release !== undefined);
      // Let the claim round in flight (if any) reach the blocked queue.
      await new Promise((resolve) => setTimeout(resolve, 50));
      clock += 6000;
      const stalled = await readiness();
      assert.equal(stalled.worker?.ok, false);
      assert.equal(stalled.worker?.detail, 'worker loop silent for 6 s');

      release?.();
      await blocked;
      await waitFor(async () => (await readiness()).worker?.ok === true);
    } finally {
      release?.();
      await scheduler.stop({ graceMs: 0 });
      await database.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('maos doctor --server readiness line', () => {
  test('a server whose worker loop is stalled fails the doctor with the check detail; a non-MAOS answer warns', async () => {
    const fake = createServer((req, res) => {
      if (req.url === '/readyz') {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            status: 'not_ready',
            checks: {
              database: { ok: true, detail: 'reachable' },
              worker: { ok: false, detail: 'worker loop silent for 45 s' },
            },
          }),
        );
      } else res.writeHead(200).end('ok');
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(fake.address() as { port: number }).port}`;
    try {
      const stalled = await checkServerReadiness(base, 5000);
      assert.equal(stalled.status, 'fail');
      assert.equal(stalled.message, 'not ready: worker: worker loop silent for 45 s');
      assert.match(stalled.fix ?? '', /worker loop is stalled/);
      const other = await checkServerReadiness(`${base}/elsewhere`, 5000);
      assert.equal(other.status, 'warn');
      const down = await checkServerReadiness('http://127.0.0.1:1', 5000);
      assert.equal(down.status, 'warn');
      assert.match(down.message, /unreachable/);
      // A server on a port fetch refuses (it listens, but no HTTP client may ask it): said why.
      const blocked = await checkServerReadiness('http://127.0.0.1:6000', 5000);
      assert.equal(blocked.status, 'warn');
      assert.match(
        blocked.message,
        /^http:\/\/127\.0\.0\.1:6000\/readyz unreachable: port 6000 is one the HTTP client .* refuses/,
      );
    } finally {
      await new Promise((resolve) => fake.close(resolve));
    }
  });
});
