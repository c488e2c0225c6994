// Tenant quotas are exact under concurrent submits: the cap is checked in the transaction that
// inserts the session, with the tenant's submissions serialised, so 20 simultaneous submits against
// a cap of 3 start exactly 3 sessions, on two PostgreSQL replicas as on one SQLite instance.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { AppError } from '../../src/errors/app-error.ts';
import { withTenantQuotas } from '../../src/security/quota-guarded-service.ts';
import { useReplicaSuite } from '../fixtures/replica-suite.ts';
import { requestJson, type TestServer } from '../fixtures/server.ts';

const CAP = 3;
const SUBMITS = 20;
const session = { objective: 'quota race', agents: [{ role: 'engineer', task: 't', runner: 'ok' }] };

/** Config with the session cap and no workers, so every accepted session stays unfinished. */
function quotaConfig(store?: Record<string, unknown>) {
  return {
    ...(store ? { store } : {}),
    workers: { concurrency: 0 },
    rateLimit: { enabled: false, maxConcurrentSessionsPerTenant: CAP },
  };
}

interface Problem {
  code: string;
  details?: unknown;
}

/** Sends SUBMITS POST /v1/sessions at once, spread round-robin over `servers`. */
async function submitAtOnce(servers: TestServer[]) {
  return Promise.all(
    Array.from({ length: SUBMITS }, (_, i) =>
      requestJson<Problem>(`${servers[i % servers.length]!.url}/v1/sessions`, {
        method: 'POST',
        body: session,
      }),
    ),
  );
}

function assertExactlyCapAccepted(responses: Awaited<ReturnType<typeof submitAtOnce>>): void {
  const statuses = responses.map((r) => r.status);
  assert.equal(statuses.filter((s) => s === 201).length, CAP, `statuses: ${statuses.join(',')}`);
  assert.equal(statuses.filter((s) => s === 429).length, SUBMITS - CAP, `statuses: ${statuses.join(',')}`);
  for (const refused of responses.filter((r) => r.status === 429)) {
    // The same problem whether the early check or the in-transaction check refused it.
    assert.match(refused.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.equal(refused.body.code, 'QUOTA_EXCEEDED');
    assert.deepEqual(refused.body.details, { quota: 'concurrent_sessions', limit: CAP });
    assert.equal(refused.headers.get('retry-after'), '60');
  }
}

describe('tenant quota under concurrent submits', { timeout: 120_000 }, () => {
  const suite = useReplicaSuite();

  test('PostgreSQL, two replicas: 20 simultaneous submits against a cap of 3 start exactly 3', async () => {
    const store = { url: suite.database.url, poolSize: 4 };
    const a = await suite.start({ config: quotaConfig(store) });
    const b = await suite.start({ config: quotaConfig(store) });
    assertExactlyCapAccepted(await submitAtOnce([a, b]));
    const client = new pg.Client({ connectionString: suite.database.url });
    await client.connect();
    try {
      const rows = await client.query<{ n: string }>('select count(*) as n from sessions');
      assert.equal(Number(rows.rows[0]?.n), CAP);
    } finally {
      await client.end();
    }
  });

  test('PostgreSQL, two replicas: retries of one submit (same Idempotency-Key) at the cap all get its session', async () => {
    const [a, b] = suite.servers as [TestServer, TestServer];
    const actor = { tenantId: 'default', principalId: 'tester' };
    // The previous test left the tenant at its cap: free exactly one slot.
    const open = await a.app.engine.service.listSessions(actor, { limit: 100 });
    assert.equal(open.items.length, CAP);
    await a.app.engine.service.cancelSession(actor, open.items[0]!.id);
    const body = { ...session, objective: 'retried' };
    // The engine's check alone (no early check): the per-tenant lock is taken before the key lookup,
    // so a retry waiting behind the first submit finds its session instead of counting it.
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 === 0 ? a : b).app.engine.service.createSession(actor, body, 'retry-key'),
      ),
    );
    assert.equal(new Set(results.map((r) => r.session.id)).size, 1);
    assert.equal(results.filter((r) => r.created).length, 1);
  });

  test('SQLite, one instance: 20 simultaneous submits against a cap of 3 start exactly 3', async () => {
    const single = await suite.start({ config: quotaConfig() });
    assertExactlyCapAccepted(await submitAtOnce([single]));
    const list = await requestJson<{ items: unknown[] }>(`${single.url}/v1/sessions?limit=100`);
    assert.equal(list.status, 200);
    assert.equal(list.body.items.length, CAP);
  });

  test('SQLite, through the session service (MCP path): every early check passes, the insert still refuses', async () => {
    const single = await suite.start({ config: quotaConfig() });
    // All early checks run before the first insert is queued: they all see 0 sessions, so only the
    // check in the insert's transaction can hold the cap.
    const service = withTenantQuotas(single.app.engine.service, single.app.security.quotas);
    const actor = { tenantId: 'default', principalId: 'tester' };
    const outcomes = await Promise.allSettled(
      Array.from({ length: SUBMITS }, () => service.createSession(actor, session)),
    );
    assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, CAP);
    for (const outcome of outcomes) {
      if (outcome.status === 'fulfilled') continue;
      const error = outcome.reason as unknown;
      assert.ok(error instanceof AppError, String(error));
      assert.equal(error.code, 'QUOTA_EXCEEDED');
      assert.deepEqual(error.details, { quota: 'concurrent_sessions', limit: CAP });
    }
  });
});
