// GET /v1/usage: totals equal the sum over the tenant's sessions in [from, to), another tenant's
// sessions never count, range edges and bad ranges; the query on SQLite and PostgreSQL
// (PostgreSQL needs --test-global-setup=test/fixtures/postgres-global-setup.ts).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { addUsage, type Usage } from '../../src/domain/types.ts';
import { chargeSessionUsage } from '../../src/engine/advance-sessions.ts';
import { chargeTenantDays } from '../../src/engine/tenant-usage-days.ts';
import { readUsageReport } from '../../src/engine/usage-report.ts';
import { newSessionRow, newTaskRow } from '../../src/store/rows.ts';
import type { Database } from '../../src/store/schema.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';

const DAY = 86_400_000;
const FROM = Date.parse('2026-10-01T00:00:00Z');

interface Seeded {
  tenant: string;
  createdAt: number;
  tasks: { role: string; usage: Usage }[];
}

/**
 * Inserts a session with its tasks; the session is charged the sum of its tasks, like the engine,
 * on the day it was created (its tenant's row of the spend ledger).
 */
async function seedSession(db: Kysely<Database>, seeded: Seeded): Promise<Usage> {
  return (await seedWithId(db, seeded)).total;
}

/** seedSession, returning the session's id. */
async function seedSessionId(db: Kysely<Database>, seeded: Seeded): Promise<string> {
  return (await seedWithId(db, seeded)).sessionId;
}

async function seedWithId(
  db: Kysely<Database>,
  seeded: Seeded,
): Promise<{ sessionId: string; total: Usage }> {
  const sessionId = randomUUID();
  const total: Usage = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costUsd: 0 };
  for (const task of seeded.tasks) addUsage(total, task.usage);
  await db
    .insertInto('sessions')
    .values({
      ...newSessionRow(
        {
          id: sessionId,
          tenant_id: seeded.tenant,
          objective: 'usage probe',
          strategy: 'static',
          status: 'succeeded',
          metadata: '{}',
          started_at: seeded.createdAt,
        },
        seeded.createdAt,
      ),
      input_tokens: total.inputTokens,
      output_tokens: total.outputTokens,
      cache_read_tokens: total.cacheReadTokens,
      cost_usd: total.costUsd,
    })
    .execute();
  await chargeTenantDays(db, new Map([[seeded.tenant, total]]), seeded.createdAt);
  for (const [i, task] of seeded.tasks.entries()) {
    await db
      .insertInto('tasks')
      .values({
        ...newTaskRow(
          { tenantId: seeded.tenant, sessionId, maxAttempts: 1, now: seeded.createdAt },
          {
            id: randomUUID(),
            kind: 'agent',
            name: `t${i}`,
            role: task.role,
            agent_id: null,
            instructions: 'x',
            runner: null,
            phase: 0,
            position: i,
            status: 'succeeded',
          },
        ),
        input_tokens: task.usage.inputTokens,
        output_tokens: task.usage.outputTokens,
        cache_read_tokens: task.usage.cacheReadTokens,
        cost_usd: task.usage.costUsd,
      })
      .execute();
  }
  return { sessionId, total };
}

function usage(inputTokens: number, costUsd: number): Usage {
  return { inputTokens, outputTokens: inputTokens * 2, cacheReadTokens: inputTokens * 3, costUsd };
}

/** A tenant's sessions around the range [FROM, FROM + 2 days) and another tenant's inside it. */
async function seedFixture(db: Kysely<Database>, tenant: string, other: string): Promise<Usage> {
  await db
    .insertInto('tenants')
    .values([
      { id: tenant, name: tenant, created_at: 0 },
      { id: other, name: other, created_at: 0 },
    ])
    .execute();
  const expected: Usage = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costUsd: 0 };
  // In range: exactly at `from`, the next day, and 1 ms before `to`; costs that drift as floats.
  for (const [createdAt, tasks] of [
    [
      FROM,
      [
        { role: 'engineer', usage: usage(10, 0.1) },
        { role: 'reviewer', usage: usage(5, 0.2) },
      ],
    ],
    [FROM + DAY + 5, [{ role: 'engineer', usage: usage(7, 0.000001) }]],
    [FROM + 2 * DAY - 1, [{ role: 'engineer', usage: usage(1, 0.3) }]],
  ] as const) {
    addUsage(expected, await seedSession(db, { tenant, createdAt, tasks: [...tasks] }));
  }
  // Out of range: 1 ms before `from`, exactly at `to`.
  await seedSession(db, {
    tenant,
    createdAt: FROM - 1,
    tasks: [{ role: 'engineer', usage: usage(1000, 9) }],
  });
  await seedSession(db, {
    tenant,
    createdAt: FROM + 2 * DAY,
    tasks: [{ role: 'engineer', usage: usage(1000, 9) }],
  });
  // Another tenant, in range.
  await seedSession(db, {
    tenant: other,
    createdAt: FROM + 10,
    tasks: [{ role: 'engineer', usage: usage(500, 5) }],
  });
  return expected;
}

for (const backend of STORE_BACKENDS) {
  describe(`usage report query (${backend.name})`, { timeout: 120_000 }, () => {
    let db: Kysely<Database>;
    let dispose: () => Promise<void>;
    let expected: Usage;

    before(async () => {
      const opened = await backend.open(1);
      db = opened.handles[0]!.db;
      dispose = opened.dispose;
      expected = await seedFixture(db, 'acme', 'other');
    });
    after(() => dispose());

    test('totals are the sum over the tenant’s sessions created in [from, to)', async () => {
      const report = await readUsageReport(db, { tenantId: 'acme', fromMs: FROM, toMs: FROM + 2 * DAY });
      assert.deepEqual(report.totals, {
        sessions: 3,
        tasks: 4,
        inputTokens: expected.inputTokens,
        outputTokens: expected.outputTokens,
        cacheReadTokens: expected.cacheReadTokens,
        costUsd: expected.costUsd,
      });
      assert.equal(report.totals.costUsd, 0.600001);
      assert.equal(report.groups, undefined);
    });

    test('per day and per role, the groups add up to the totals', async () => {
      const range = { tenantId: 'acme', fromMs: FROM, toMs: FROM + 2 * DAY };
      const days = await readUsageReport(db, { ...range, groupBy: 'day' });
      assert.deepEqual(
        days.groups?.map((g) => [g.key, g.sessions, g.tasks, g.inputTokens, g.costUsd]),
        [
          ['2026-10-01', 1, 2, 15, 0.3],
          ['2026-10-02', 2, 2, 8, 0.300001],
        ],
      );
      const roles = await readUsageReport(db, { ...range, groupBy: 'role' });
      assert.deepEqual(
        roles.groups?.map((g) => [g.key, g.sessions, g.tasks, g.inputTokens, g.costUsd]),
        [
          ['engineer', 3, 3, 18, 0.400001],
          ['reviewer', 1, 1, 5, 0.2],
        ],
      );
    });

    test('totals and days count spend on the day it was charged; roles by the sessions created', async () => {
      // Created on the last day before the range, charged again on its first day and on the day after it.
      const lateTenant = 'late';
      await db.insertInto('tenants').values({ id: lateTenant, name: lateTenant, created_at: 0 }).execute();
      const sessionId = await seedSessionId(db, {
        tenant: lateTenant,
        createdAt: FROM - 60_000,
        tasks: [{ role: 'engineer', usage: usage(4, 0.04) }],
      });
      await db
        .transaction()
        .execute((trx) => chargeSessionUsage(trx, sessionId, usage(10, 0.1), FROM + 60_000));
      await db
        .transaction()
        .execute((trx) => chargeSessionUsage(trx, sessionId, usage(20, 0.2), FROM + DAY + 60_000));
      const range = { tenantId: lateTenant, fromMs: FROM, toMs: FROM + DAY };
      const totals = await readUsageReport(db, range);
      assert.deepEqual(totals.totals, {
        sessions: 0,
        tasks: 0,
        inputTokens: 10,
        outputTokens: 20,
        cacheReadTokens: 30,
        costUsd: 0.1,
      });
      const days = await readUsageReport(db, {
        tenantId: lateTenant,
        fromMs: FROM - DAY,
        toMs: FROM + 2 * DAY,
        groupBy: 'day',
      });
      assert.deepEqual(
        days.groups?.map((g) => [g.key, g.sessions, g.tasks, g.inputTokens, g.costUsd]),
        [
          ['2026-09-30', 1, 1, 4, 0.04],
          ['2026-10-01', 0, 0, 10, 0.1],
          ['2026-10-02', 0, 0, 20, 0.2],
        ],
      );
      assert.deepEqual([days.totals.sessions, days.totals.inputTokens, days.totals.costUsd], [1, 34, 0.34]);
      // A range that starts after 00:00 UTC counts from the next day on.
      const partial = await readUsageReport(db, {
        tenantId: lateTenant,
        fromMs: FROM + 1,
        toMs: FROM + 2 * DAY,
      });
      assert.equal(partial.totals.inputTokens, 20);
      // Per role: the sessions created in the range, with all they were charged (none here).
      const roles = await readUsageReport(db, { ...range, groupBy: 'role' });
      assert.deepEqual(roles.groups, []);
      const rolesBefore = await readUsageReport(db, {
        tenantId: lateTenant,
        fromMs: FROM - DAY,
        toMs: FROM,
        groupBy: 'role',
      });
      assert.deepEqual(rolesBefore.totals.inputTokens, 34);
    });

    test('another tenant sees only its own; an empty range is zeros', async () => {
      const other = await readUsageReport(db, { tenantId: 'other', fromMs: FROM, toMs: FROM + 2 * DAY });
      assert.deepEqual([other.totals.sessions, other.totals.inputTokens, other.totals.costUsd], [1, 500, 5]);
      const empty = await readUsageReport(db, {
        tenantId: 'acme',
        fromMs: FROM + 3 * DAY,
        toMs: FROM + 4 * DAY,
        groupBy: 'day',
      });
      assert.deepEqual(empty.totals, {
        sessions: 0,
        tasks: 0,
        inputTokens: 0,
        outputTokens: 0,
        cacheReadTokens: 0,
        costUsd: 0,
      });
      assert.deepEqual(empty.groups, []);
    });
  });
}

describe('GET /v1/usage over HTTP', { timeout: 60_000 }, () => {
  let server: TestServer;
  let expected: Usage;

  before(async () => {
    server = await startTestServer({ config: { workers: { concurrency: 0 } } });
    // Auth mode none: the caller is tenant `default`.
    const db = server.app.database.db as Kysely<Database>;
    expected = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costUsd: 0 };
    await db.insertInto('tenants').values({ id: 'other-http', name: 'other', created_at: 0 }).execute();
    addUsage(
      expected,
      await seedSession(db, {
        tenant: 'default',
        createdAt: FROM + 1,
        tasks: [{ role: 'engineer', usage: usage(3, 0.03) }],
      }),
    );
    await seedSession(db, {
      tenant: 'other-http',
      createdAt: FROM + 2,
      tasks: [{ role: 'engineer', usage: usage(300, 3) }],
    });
  });
  after(() => server.close());

  test('answers the caller tenant’s totals, normalised range and groups', async () => {
    const answer = await requestJson<{
      from: string;
      to: string;
      totals: Record<string, number>;
      groups: unknown[];
    }>(`${server.url}/v1/usage?from=2026-10-01T02:00:00%2B02:00&to=2026-10-02T00:00:00Z&groupBy=day`);
    assert.equal(answer.status, 200);
    assert.equal(answer.body.from, '2026-10-01T00:00:00.000Z');
    assert.equal(answer.body.to, '2026-10-02T00:00:00.000Z');
    assert.deepEqual(answer.body.totals, { sessions: 1, tasks: 1, ...expected });
    assert.equal(answer.body.groups.length, 1);
  });

  test('bad, missing, inverted and too long ranges are VALIDATION_FAILED problems', async () => {
    for (const query of [
      '',
      'from=2026-10-01T00:00:00Z',
      'from=yesterday&to=2026-10-02T00:00:00Z',
      'from=2026-10-01&to=2026-10-02',
      'from=2026-10-02T00:00:00Z&to=2026-10-01T00:00:00Z',
      'from=2026-10-01T00:00:00Z&to=2026-10-01T00:00:00Z',
      'from=2025-01-01T00:00:00Z&to=2026-10-01T00:00:00Z',
      'from=2026-10-01T00:00:00Z&to=2026-10-02T00:00:00Z&groupBy=provider',
    ]) {
      const answer = await requestJson<{ code: string }>(`${server.url}/v1/usage?${query}`);
      assert.equal(answer.status, 400, query);
      assert.equal(answer.headers.get('content-type')?.startsWith('application/problem+json'), true, query);
      assert.equal(answer.body.code, 'VALIDATION_FAILED', query);
    }
    const longest = await requestJson(
      `${server.url}/v1/usage?from=2025-10-01T00:00:00Z&to=2026-10-02T00:00:00Z`,
    );
    assert.equal(longest.status, 200, '366 days is allowed');
  });
});
