// PostgreSQL refusing new connections because it has too many (SQLSTATE 53300: `max_connections`
// reached, or a role's or database's connection limit): requests get 503 STORE_UNAVAILABLE naming
// the reason, not 500 INTERNAL; /readyz names the code, and the replica serves again once the
// server accepts connections.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { withDatabase } from '../fixtures/postgres.ts';
import { type RestartablePostgres, startRestartablePostgres } from '../fixtures/restartable-postgres.ts';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

describe('PostgreSQL with too many connections', { timeout: 120_000 }, () => {
  let database: RestartablePostgres;
  let server: TestServer;
  let admin: pg.Client;
  before(async () => {
    database = await startRestartablePostgres();
    // The replica connects as an ordinary role: a superuser is exempt from connection limits.
    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    await admin.query(`create role maos_app login password 'app'`);
    await admin.query('grant all on schema public to maos_app');
    await admin.query('grant all on all tables in schema public to maos_app');
    await admin.query('grant all on all sequences in schema public to maos_app');
    const url = new URL(withDatabase(database.adminUrl, 'maos'));
    url.username = 'maos_app';
    url.password = 'app';
    server = await startTestServer({
      config: {
        store: { url: url.toString(), poolSize: 4, connectTimeoutMs: 2000 },
        workers: { concurrency: 1, pollIntervalMs: 200 },
      },
    });
  });
  after(async () => {
    await server?.close();
    await admin?.end();
    await database?.close();
  });

  const submit = () =>
    requestJson<{ id: string; code?: string; detail?: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'limit', agents: [{ name: 'a', role: 'engineer', task: 't', runner: 'ok' }] },
    });

  test('503 STORE_UNAVAILABLE naming the reason while refused, served again afterwards', async () => {
    // No new connection for the role, and the replica's open ones are ended: every connection it
    // opens now is refused with 53300 (as `sorry, too many clients already` is).
    await admin.query('alter role maos_app connection limit 0');
    await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where usename = 'maos_app'`);
    const ready = await waitFor(
      async () => {
        const answer = await requestJson<{ checks: Record<string, { detail: string }> }>(
          `${server.url}/readyz`,
        );
        return answer.body.checks.database?.detail === 'unreachable (53300)' ? answer : undefined;
      },
      30_000,
      '/readyz to name the refused connection',
    );
    assert.equal(ready.status, 503);

    const list = await requestJson<{ code: string; detail: string }>(`${server.url}/v1/sessions`);
    assert.equal(list.status, 503, JSON.stringify(list.body));
    assert.equal(list.body.code, 'STORE_UNAVAILABLE');
    assert.match(list.body.detail, /too many connections/);
    assert.match(String(list.headers.get('content-type')), /application\/problem\+json/);
    const rejected = await submit();
    assert.equal(rejected.status, 503, JSON.stringify(rejected.body));
    assert.equal(rejected.body.code, 'STORE_UNAVAILABLE');

    await admin.query('alter role maos_app connection limit -1');
    const accepted = await waitFor(async () => {
      const attempt = await submit();
      return attempt.status === 201 ? attempt : undefined;
    }, 30_000);
    assert.equal(
      (await waitForSession<{ status: string }>(server.url, accepted.body.id)).status,
      'completed',
    );
  });
});
