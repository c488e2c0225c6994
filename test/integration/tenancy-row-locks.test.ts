// PostgreSQL: a request of tenant B naming tenant A's session takes no lock on A's session row.
// Cancel, approve, reject, steering messages and deletion lock the session's row before they decide
// (session-locks.ts); locked before the tenant was checked, B's request waited for whatever held A's
// row (an engine step, A's own approval) and then held it itself until its 404, so B could tell
// A's session from none by the wait, and hold up A's session with requests that fail. Here a
// transaction holds A's row while B sends every such route and MCP tool: each must answer 404 at
// once, never wait on that lock. A's own cancel, the control, does wait for it. (SQLite has no row
// locks: its writers take turns whatever the tenant.)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { type ConnectedClient, connectHttpClient } from '../fixtures/mcp-server.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { type ProbeStack, probeBodyFor, startProbeStack } from '../fixtures/security-probe.ts';
import { requestJson } from '../fixtures/server.ts';

const TENANT_A = 'tenant-alpha-locks';
const TENANT_B = 'tenant-bravo-locks';

describe('tenant B takes no lock on tenant A’s session rows (postgres)', { timeout: 120_000 }, () => {
  let stack: ProbeStack;
  let adminA: string;
  let adminB: string;
  let locker: pg.Client;
  let watcher: pg.Client;
  let lockerPid: number;
  const clients: ConnectedClient[] = [];
  const cleanups: (() => unknown)[] = [];

  after(async () => {
    for (const client of clients) await client.close();
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  before(async () => {
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    stack = await startProbeStack(
      { after: (fn: () => unknown) => cleanups.push(fn) },
      { storeUrl: database.url },
    );
    adminA = await stack.mint(TENANT_A, ['admin']);
    adminB = await stack.mint(TENANT_B, ['admin']);
    locker = new pg.Client({ connectionString: database.url });
    watcher = new pg.Client({ connectionString: database.url });
    await locker.connect();
    await watcher.connect();
    cleanups.push(
      () => locker.end(),
      () => watcher.end(),
    );
    lockerPid = Number((await locker.query('select pg_backend_pid() as pid')).rows[0].pid);
  });

  async function sessionOfA(): Promise<string> {
    const created = await requestJson<{ id: string }>(`${stack.server.url}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminA}` },
      body: { objective: 'a session of A', agents: [{ role: 'engineer', task: 't', runner: 'ok' }] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    return created.body.id;
  }

  /** Whether a backend waits for a lock the locker's transaction holds. */
  async function someoneWaitsForLocker(): Promise<boolean> {
    const { rows } = await watcher.query(
      `select count(*)::int as n from pg_stat_activity
        where datname = current_database() and $1 = any(pg_blocking_pids(pid))`,
      [lockerPid],
    );
    return Number(rows[0].n) > 0;
  }

  /**
   * Runs `send` while a transaction holds session `id`'s row (as an engine step or an approval of its
   * own tenant would): `waited` when the request queued behind that lock, else its answer. The lock
   * is released either way, and the request's answer awaited.
   */
  async function whileRowLocked(id: string, send: () => Promise<string>): Promise<string> {
    await locker.query('begin');
    try {
      await locker.query('select id from sessions where id = $1 for update', [id]);
      let answer: string | undefined;
      const sent = send().then(
        (value) => {
          answer = value;
          return value;
        },
        (error: Error) => {
          answer = `error ${error.message}`;
          return answer;
        },
      );
      while (answer === undefined) {
        if (await someoneWaitsForLocker()) {
          await locker.query('rollback');
          await sent;
          return 'waited';
        }
        await sleep(10);
      }
      return answer;
    } finally {
      // Ended already when the request waited (a second rollback only warns).
      await locker.query('rollback');
    }
  }

  test('every state-changing /v1/sessions/{id} route of B answers 404 without waiting', async () => {
    const id = await sessionOfA();
    const routes = stack.routes.filter(
      (r) => r.url.startsWith('/v1/sessions/:id') && (r.method === 'POST' || r.method === 'DELETE'),
    );
    assert.ok(routes.length >= 6, 'the session routes were found');
    const outcomes: string[] = [];
    for (const route of routes) {
      const body = probeBodyFor(route.method, route.url);
      const outcome = await whileRowLocked(id, async () => {
        const response = await fetch(`${stack.server.url}${route.url.replace(':id', id)}`, {
          method: route.method,
          headers: {
            authorization: `Bearer ${adminB}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(60_000),
        });
        await response.body?.cancel();
        return String(response.status);
      });
      outcomes.push(`${route.method} ${route.url}: ${outcome}`);
    }
    assert.deepEqual(
      outcomes,
      routes.map((route) => `${route.method} ${route.url}: 404`),
    );
  });

  test('every MCP tool of B naming A’s session answers at once', async () => {
    const id = await sessionOfA();
    const b = await connectHttpClient(stack.server.url, { authorization: `Bearer ${adminB}` });
    clients.push(b);
    const { tools } = await b.client.listTools();
    const sessionTools = tools.filter((tool) =>
      Object.keys((tool.inputSchema.properties ?? {}) as Record<string, unknown>).includes('session_id'),
    );
    assert.ok(sessionTools.length >= 6, 'the session tools were found');
    const outcomes: string[] = [];
    for (const tool of sessionTools) {
      const properties = Object.keys((tool.inputSchema.properties ?? {}) as Record<string, unknown>);
      const outcome = await whileRowLocked(id, async () => {
        const result = await b.client.callTool({
          name: tool.name,
          arguments: {
            session_id: id,
            ...(properties.includes('message') ? { message: 'hello' } : {}),
            ...(properties.includes('reason') ? { reason: 'probe' } : {}),
          },
        });
        return result.isError === true ? 'refused' : 'done';
      });
      outcomes.push(`${tool.name}: ${outcome}`);
    }
    assert.deepEqual(
      outcomes,
      sessionTools.map((tool) => `${tool.name}: refused`),
    );
  });

  test('control: A’s own cancel waits for the lock, then cancels', async () => {
    const id = await sessionOfA();
    const outcome = await whileRowLocked(id, async () => {
      const response = await fetch(`${stack.server.url}/v1/sessions/${id}/cancel`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminA}` },
        signal: AbortSignal.timeout(60_000),
      });
      await response.body?.cancel();
      return String(response.status);
    });
    assert.equal(outcome, 'waited');
    const session = await requestJson<{ status: string }>(`${stack.server.url}/v1/sessions/${id}`, {
      headers: { authorization: `Bearer ${adminA}` },
    });
    assert.equal(session.body.status, 'cancelled');
  });
});
