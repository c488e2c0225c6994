// Cluster mode: rate limits and tenant quotas are shared by the replicas through PostgreSQL. Two app
// instances on one database refuse the request that exceeds the limit at the same total as a single
// instance does, with the IETF RateLimit header fields counting down across both.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { useReplicaSuite } from '../fixtures/replica-suite.ts';
import { requestJson, type TestServer } from '../fixtures/server.ts';

const LIMIT = 6;
const limitedConfig = {
  rateLimit: {
    enabled: true,
    principal: { points: LIMIT, windowSeconds: 60 },
    tenant: { points: 1000, windowSeconds: 60 },
  },
  workers: { concurrency: 0 },
};

/** Status and principal `r=` of each of `count` GET /v1/sessions sent round-robin to `servers`. */
async function sendRoundRobin(servers: TestServer[], count: number) {
  const results: {
    status: number;
    remaining: number | null;
    retryAfter: string | null;
    policy: string | null;
  }[] = [];
  for (let i = 0; i < count; i++) {
    const response = await requestJson(`${servers[i % servers.length]!.url}/v1/sessions`);
    const state = response.headers.get('ratelimit') ?? '';
    const match = /"principal";r=(\d+);t=(\d+)/.exec(state);
    results.push({
      status: response.status,
      remaining: match ? Number(match[1]) : null,
      retryAfter: response.headers.get('retry-after'),
      policy: response.headers.get('ratelimit-policy'),
    });
  }
  return results;
}

describe('cluster: rate limits and quotas shared across replicas', { timeout: 120_000 }, () => {
  const suite = useReplicaSuite();

  test('requests spread over two replicas hit 429 at the same total as on one instance', async () => {
    const store = { url: suite.database.url, poolSize: 3 };
    const a = await suite.start({ config: { ...limitedConfig, store } });
    const b = await suite.start({ config: { ...limitedConfig, store } });
    const single = await suite.start({ config: limitedConfig }); // SQLite, one process

    const spread = await sendRoundRobin([a, b], LIMIT + 2);
    const alone = await sendRoundRobin([single], LIMIT + 2);
    const expected = [...Array(LIMIT).fill(200), 429, 429];
    assert.deepEqual(
      spread.map((r) => r.status),
      expected,
    );
    assert.deepEqual(
      alone.map((r) => r.status),
      expected,
    );
    // One counter: the remaining count goes down across both replicas, exactly as on one instance.
    assert.deepEqual(
      spread.map((r) => r.remaining),
      [5, 4, 3, 2, 1, 0, 0, 0],
    );
    assert.deepEqual(
      spread.map((r) => r.remaining),
      alone.map((r) => r.remaining),
    );
    for (const refused of spread.slice(LIMIT)) {
      assert.match(refused.retryAfter ?? '', /^[1-9]\d*$/);
      assert.match(refused.policy ?? '', /"principal";q=6;w=60/);
    }
    // The counters are rows of the shared table, not process memory.
    const client = new pg.Client({ connectionString: suite.database.url });
    await client.connect();
    try {
      const rows = await client.query<{ key: string; points: number }>(
        "select key, points from rate_limits where key like 'maos-principal:%'",
      );
      assert.equal(rows.rowCount, 1);
      assert.equal(rows.rows[0]?.points, LIMIT + 2);
      // Unlogged: counter updates never wait for a WAL flush.
      const table = await client.query<{ relpersistence: string }>(
        "select relpersistence from pg_class where relname = 'rate_limits'",
      );
      assert.equal(table.rows[0]?.relpersistence, 'u');
    } finally {
      await client.end();
    }
  });

  test('an address out of failed logins on one replica is refused on the other after one more guess, a valid key too', async () => {
    const config = {
      store: { url: suite.database.url, poolSize: 3 },
      auth: { mode: 'apikey' },
      rateLimit: { enabled: true, anonymous: { points: 2, windowSeconds: 600 } },
      workers: { concurrency: 0 },
    };
    const a = await suite.start({ config });
    const b = await suite.start({ config });
    const { key } = await createApiKey(b.app.database.db as unknown as SecurityDb, {
      tenantId: 'acme',
      name: 'failed-logins',
      roles: ['viewer'],
      createdBy: 'test',
    });
    const call = (server: TestServer, credential: string) =>
      requestJson(`${server.url}/v1/sessions`, { headers: { authorization: `Bearer ${credential}` } });
    assert.equal((await call(b, key)).status, 200);
    const wrong = 'maos_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    assert.deepEqual([(await call(a, wrong)).status, (await call(a, wrong)).status], [401, 401]);
    // B reads the shared counter only for addresses it charged itself: the first guess it gets is
    // verified, then charged and refused (rate-limit.ts, createChargedNetworks).
    assert.equal((await call(b, wrong)).status, 429);
    const refused = await call(b, key);
    assert.equal(refused.status, 429, JSON.stringify(refused.body));
    assert.match(refused.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
  });

  test('the concurrent-sessions quota counts the sessions of every replica', async () => {
    const config = {
      store: { url: suite.database.url, poolSize: 3 },
      // No workers: the first session stays unfinished.
      workers: { concurrency: 0 },
      rateLimit: { enabled: false, maxConcurrentSessionsPerTenant: 1 },
    };
    const a = await suite.start({ config });
    const b = await suite.start({ config });
    const session = { objective: 'quota', agents: [{ role: 'engineer', task: 't', runner: 'ok' }] };
    // The previous test's database holds no sessions: the first submit is accepted.
    const first = await requestJson(`${a.url}/v1/sessions`, { method: 'POST', body: session });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const second = await requestJson<{ code: string }>(`${b.url}/v1/sessions`, {
      method: 'POST',
      body: session,
    });
    assert.equal(second.status, 429);
    assert.equal(second.body.code, 'QUOTA_EXCEEDED');
  });
});

describe('Retry-After with both the principal and the tenant limit hit', { timeout: 120_000 }, () => {
  const suite = useReplicaSuite();

  test('is the later reset of the two, on PostgreSQL and SQLite alike', async () => {
    // The principal's window resets long before the tenant's; the third request is refused by the
    // principal's limit and uses up the tenant's.
    const config = {
      rateLimit: {
        enabled: true,
        principal: { points: 2, windowSeconds: 10 },
        tenant: { points: 3, windowSeconds: 100 },
      },
      workers: { concurrency: 0 },
    };
    const shared = await suite.start({
      config: { ...config, store: { url: suite.database.url, poolSize: 3 } },
    });
    const single = await suite.start({ config });
    for (const server of [shared, single]) {
      const statuses = [];
      let last: Awaited<ReturnType<typeof requestJson>> | undefined;
      for (let i = 0; i < 3; i += 1) {
        last = await requestJson(`${server.url}/v1/sessions`);
        statuses.push(last.status);
      }
      assert.deepEqual(statuses, [200, 200, 429]);
      const state = last?.headers.get('ratelimit') ?? '';
      const tenant = /"tenant";r=(\d+);t=(\d+)/.exec(state);
      const principal = /"principal";r=(\d+);t=(\d+)/.exec(state);
      assert.ok(tenant && principal, state);
      assert.deepEqual([tenant[1], principal[1]], ['0', '0'], state);
      assert.ok(Number(principal[2]) <= 10 && Number(tenant[2]) > 10, state);
      // A retry at the principal's reset would meet the tenant's limit: told the tenant's reset.
      assert.equal(last?.headers.get('retry-after'), tenant[2], state);
    }
  });
});
