// A failover that leaves the replicas on a read-only server (a hot standby, or a primary demoted
// before the address moved; simulated with default_transaction_read_only): reads are served, and
// every kind of write, in the write queue or in a transaction of its own, gets 503
// STORE_UNAVAILABLE naming the reason instead of 500; once writes are accepted again, so are requests.
// /readyz answers 503 meanwhile (and `maos doctor` fails), its database check naming the read-only
// server (`select 1` alone passed there: the instance stayed in rotation while every write failed).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { checkDatabase as doctorDatabaseChecks } from '../../src/cli/ops/doctor-checks.ts';
import { configSchema } from '../../src/config/schema.ts';
import { generateKekEntry } from '../../src/security/secrets.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

describe('PostgreSQL that accepts only reads', { timeout: 120_000 }, () => {
  let database: TestDatabase;
  let server: TestServer;
  let admin: pg.Client;
  let closedByTest = false;
  before(async () => {
    database = await createTestDatabase();
    server = await startTestServer({
      config: {
        store: { url: database.url, poolSize: 4 },
        secrets: { kekRing: generateKekEntry('k1') },
        ssrf: { allowedHosts: ['127.0.0.1'] },
      },
    });
    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
  });
  after(async () => {
    if (!closedByTest) await server?.close();
    await admin?.end();
    await database?.drop();
  });

  const submit = () =>
    requestJson<{ id: string; code?: string; detail?: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'standby', agents: [{ name: 'a', role: 'engineer', task: 't', runner: 'ok' }] },
    });
  const createWebhook = () =>
    requestJson<{ code?: string; detail?: string }>(`${server.url}/v1/webhooks`, {
      method: 'POST',
      body: { url: 'http://127.0.0.1:8099/hook', events: ['session.completed'] },
    });

  interface Readiness {
    status: string;
    checks: Record<string, { ok: boolean; detail: string }>;
  }
  const readiness = () => requestJson<Readiness>(`${server.url}/readyz`);

  /** New sessions of the database start read-only; the replica's open ones are ended. */
  async function setReadOnly(on: boolean): Promise<void> {
    const name = new URL(database.url).pathname.slice(1);
    await admin.query(`alter database ${name} set default_transaction_read_only = ${on ? 'on' : 'off'}`);
    await admin.query(
      'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
      [name],
    );
  }

  test('writes get 503 STORE_UNAVAILABLE, reads are served, and writes work again afterwards', async () => {
    const earlier = await submit();
    assert.equal(earlier.status, 201, JSON.stringify(earlier.body));
    await waitForSession(server.url, earlier.body.id);

    await setReadOnly(true);
    // Requests right after the terminations may still meet a connection being closed (503 too).
    for (const write of [submit, createWebhook]) {
      await waitFor(async () => {
        const answer = await write();
        assert.equal(answer.status, 503, JSON.stringify(answer.body));
        assert.equal(answer.body.code, 'STORE_UNAVAILABLE');
        return /accepts only reads/.test(String(answer.body.detail));
      }, 30_000);
    }
    const read = await requestJson(`${server.url}/v1/sessions/${earlier.body.id}`);
    assert.equal(read.status, 200, JSON.stringify(read.body));
    // Not ready, for the reason the writes fail; the migrations are still read.
    const notReady = await waitFor(async () => {
      const answer = await readiness();
      return /^unreachable/.test(answer.body.checks.database?.detail ?? '') ? undefined : answer;
    }, 30_000);
    assert.equal(notReady.status, 503, JSON.stringify(notReady.body));
    assert.equal(notReady.body.status, 'not_ready');
    assert.deepEqual(notReady.body.checks.database, {
      ok: false,
      detail: 'read-only: transactions are read-only (default_transaction_read_only)',
    });
    assert.equal(notReady.body.checks.migrations?.ok, true, JSON.stringify(notReady.body));
    const scrape = await fetch(`${server.url}/metrics`).then((response) => response.text());
    assert.match(scrape, /maos_readiness_check_passing\{check="database"\} 0/);
    // `maos doctor` says the same: reachable, but it takes no writes.
    const doctor = () => doctorDatabaseChecks(configSchema.parse({ store: { url: database.url } }));
    const [readOnlyCheck] = await doctor();
    assert.equal(readOnlyCheck?.status, 'fail', JSON.stringify(readOnlyCheck));
    assert.match(
      readOnlyCheck?.message ?? '',
      /^reachable but read-only: transactions are read-only \(default_transaction_read_only\)/,
    );
    assert.match(readOnlyCheck?.fix ?? '', /primary/);

    await setReadOnly(false);
    const accepted = await waitFor(async () => {
      const answer = await submit();
      return answer.status === 201 ? answer : undefined;
    }, 30_000);
    assert.equal(
      (await waitForSession<{ status: string }>(server.url, accepted.body.id)).status,
      'completed',
    );
    assert.equal((await createWebhook()).status, 201);
    // Ready again (a connection the termination closed may fail one probe first).
    const ready = await waitFor(async () => {
      const answer = await readiness();
      return answer.status === 200 ? answer : undefined;
    }, 30_000);
    assert.deepEqual(ready.body.checks.database, { ok: true, detail: 'reachable' });
    assert.equal((await doctor())[0]?.status, 'pass');
  });

  // The pool's idle connections were ended by the server just before the shutdown: the final audit
  // checkpoint's query met one of them and failed (57P01), which stopped the shutdown there, leaving
  // the database pool and the rest open, so the process never exited.
  test('the server shuts down after its connections are ended at the end of a read-only period', async () => {
    const { body } = await submit();
    await waitForSession(server.url, body.id);
    await setReadOnly(true);
    await waitFor(async () => (await submit()).status === 503, 30_000);
    // Reads keep connections in the pool, idle when the server ends them.
    await waitFor(
      async () => /^read-only/.test((await readiness()).body.checks.database?.detail ?? ''),
      30_000,
    );
    await setReadOnly(false);
    closedByTest = true;
    assert.equal(await closeWithin30s(server), 'closed');
  });

  // Deterministic on the old code too: the final checkpoint's insert is refused (25006).
  test('the server shuts down while the database still accepts only reads', async () => {
    const other = await startTestServer({
      config: {
        store: { url: database.url, poolSize: 4 },
        secrets: { kekRing: generateKekEntry('k1') },
        ssrf: { allowedHosts: ['127.0.0.1'] },
      },
    });
    try {
      const created = await requestJson<{ id: string }>(`${other.url}/v1/sessions`, {
        method: 'POST',
        body: { objective: 'standby', agents: [{ name: 'a', role: 'engineer', task: 't', runner: 'ok' }] },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      await waitForSession(other.url, created.body.id);
      await setReadOnly(true);
      assert.equal(await closeWithin30s(other), 'closed');
    } finally {
      await setReadOnly(false);
    }
  });
});

/** 'closed', or why not: the close's error, or that it still runs after 30 s (a hang fails, not stalls). */
async function closeWithin30s(server: TestServer): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      server.close().then(
        () => 'closed',
        (error: unknown) => `close failed: ${String(error)}`,
      ),
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve('still closing after 30 s'), 30_000);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
