// consumeMore, the charge of a JSON-RPC batch's further requests: all or none, on the memory
// counters (SQLite) and on the shared `rate_limits` table (PostgreSQL; run with
// --test-global-setup=test/fixtures/postgres-global-setup.ts, or a private server is started).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../../test/fixtures/postgres.ts';
import { createRateLimiter, type RateLimiter } from './rate-limit.ts';

const config = {
  enabled: true,
  principal: { points: 6, windowSeconds: 60 },
  tenant: { points: 8, windowSeconds: 120 },
  anonymous: { points: 2, windowSeconds: 30 },
  maxConcurrentSessionsPerTenant: 0,
  maxDailyTokensPerTenant: 0,
};

/** The `r=` of each limit in a RateLimit header field, by name. */
function remainingOf(header: string | undefined): Record<string, number> {
  const remaining: Record<string, number> = {};
  for (const match of (header ?? '').matchAll(/"(\w+)";r=(\d+);t=\d+/g)) {
    remaining[match[1] as string] = Number(match[2]);
  }
  return remaining;
}

const backends: { name: string; make(): Promise<{ limiter: RateLimiter; close(): Promise<void> }> }[] = [
  {
    name: 'memory (SQLite)',
    make: async () => ({ limiter: createRateLimiter(config), close: async () => {} }),
  },
  {
    name: 'shared (PostgreSQL)',
    async make() {
      const database: TestDatabase = await createTestDatabase();
      const pool = new pg.Pool({ connectionString: database.url, max: 3 });
      return {
        limiter: createRateLimiter(config, { pool }),
        async close() {
          await pool.end();
          await database.drop();
        },
      };
    },
  },
];

for (const backend of backends) {
  describe(`charging a batch at once: ${backend.name}`, () => {
    let limiter: RateLimiter;
    let close: () => Promise<void>;
    before(async () => {
      ({ limiter, close } = await backend.make());
    });
    after(() => close());

    test('a batch that fits is charged whole; one that does not is refused and charged nothing', async () => {
      const alice = { tenantId: 'acme', principalId: 'alice' };
      // The POST of a batch of 4: one point, then 3 more.
      assert.equal((await limiter.consume(alice)).allowed, true);
      const fits = await limiter.consumeMore(alice, 3);
      assert.equal(fits.allowed, true);
      assert.deepEqual(remainingOf(fits.headers.RateLimit), { tenant: 4, principal: 2 });
      // A batch of 3: its POST fits (1 left), its 2 more do not.
      assert.equal((await limiter.consume(alice)).allowed, true);
      const refused = await limiter.consumeMore(alice, 2);
      assert.equal(refused.allowed, false);
      assert.equal(refused.firstRefusal, true);
      assert.equal(refused.exceedsQuota, undefined);
      // Told as the counters stand without it, and when the principal's counter (the one without
      // room) resets; nothing of it was charged.
      assert.deepEqual(remainingOf(refused.headers.RateLimit), { tenant: 3, principal: 1 });
      const principal = refused.policies.find((policy) => policy.name === 'principal');
      assert.ok(
        refused.retryAfterSeconds >= 1 && refused.retryAfterSeconds <= 60,
        `${refused.retryAfterSeconds}`,
      );
      assert.equal(refused.retryAfterSeconds, principal?.resetSeconds);
      // The point left is still there for a single request.
      const single = await limiter.consume(alice);
      assert.equal(single.allowed, true);
      assert.deepEqual(remainingOf(single.headers.RateLimit), { tenant: 2, principal: 0 });
    });

    test('the tenant counter without room refuses too, and keeps its requests for the others', async () => {
      const bob = { tenantId: 'small', principalId: 'bob' };
      const carol = { tenantId: 'small', principalId: 'carol' };
      for (let i = 0; i < 5; i++) assert.equal((await limiter.consume(carol)).allowed, true);
      // 8 - 5 = 3 left in the tenant: bob's POST takes one, its 3 more do not fit.
      assert.equal((await limiter.consume(bob)).allowed, true);
      const refused = await limiter.consumeMore(bob, 3);
      assert.equal(refused.allowed, false);
      const tenant = refused.policies.find((policy) => policy.name === 'tenant');
      assert.equal(tenant?.remaining, 2);
      // The tenant's window (120 s) decides the retry, not bob's own (60 s, with room).
      assert.equal(refused.retryAfterSeconds, tenant?.resetSeconds);
      assert.ok(refused.retryAfterSeconds > 60, `${refused.retryAfterSeconds}`);
      assert.equal((await limiter.consumeMore(bob, 1)).allowed, true);
      assert.equal((await limiter.consume(carol)).allowed, true);
    });

    test('a counter the batch would have used up exactly decides the retry too, as for a single request', async () => {
      const gina = { tenantId: 'tight', principalId: 'gina' };
      const hal = { tenantId: 'tight', principalId: 'hal' };
      // gina: 1 of 6 left; the tenant: 8 - 6 = 2 left once hal has sent one.
      for (let i = 0; i < 5; i++) assert.equal((await limiter.consume(gina)).allowed, true);
      assert.equal((await limiter.consume(hal)).allowed, true);
      // 2 more: gina's own counter has no room (refused); the tenant's would be left with none.
      const refused = await limiter.consumeMore(gina, 2);
      assert.equal(refused.allowed, false);
      const tenant = refused.policies.find((policy) => policy.name === 'tenant');
      assert.equal(tenant?.remaining, 2);
      // The same batch sent again (its POST and 2 more) does not fit the tenant's 2 before its
      // window (120 s) ends, however soon gina's (60 s) does.
      assert.equal(refused.retryAfterSeconds, tenant?.resetSeconds);
      assert.ok(refused.retryAfterSeconds > 60, `${refused.retryAfterSeconds}`);
    });

    test('more requests than a whole quota can never pass: refused with exceedsQuota, nothing charged', async () => {
      const dave = { tenantId: 'other', principalId: 'dave' };
      assert.equal((await limiter.consume(dave)).allowed, true);
      // 1 + 6 = 7 requests: more than the principal's 6 per window.
      const tooMany = await limiter.consumeMore(dave, 6);
      assert.equal(tooMany.allowed, false);
      assert.deepEqual(tooMany.exceedsQuota, { name: 'principal', quota: 6, windowSeconds: 60 });
      // 1 + 5 = 6 fit the quota, and the counters are untouched by the refusal.
      const whole = await limiter.consumeMore(dave, 5);
      assert.equal(whole.allowed, true);
      assert.deepEqual(remainingOf(whole.headers.RateLimit), { tenant: 2, principal: 0 });
    });
  });
}

test('a disabled limiter charges nothing and allows any batch', async () => {
  const off = createRateLimiter({ ...config, enabled: false });
  const decision = await off.consumeMore({ tenantId: 't', principalId: 'p' }, 1000);
  assert.equal(decision.allowed, true);
  assert.deepEqual(decision.headers, {});
});

test('shared store: a refund reaching a counter whose window ended since the charge gives nothing back', async () => {
  const database: TestDatabase = await createTestDatabase();
  const pool = new pg.Pool({ connectionString: database.url, max: 3 });
  try {
    // The principal's window ends right after the charge that refuses the batch is answered (a slow
    // store, a window near its end): the refund then reaches an expired row.
    const ending = {
      query(query: pg.QueryConfig) {
        return pool.query(query).then(async (result) => {
          const row = result.rows[0] as { points?: unknown } | undefined;
          const key = query.values?.[0];
          if (typeof key === 'string' && key.startsWith('maos-principal') && Number(row?.points) > 6) {
            await pool.query('UPDATE rate_limits SET expire = $2 WHERE key = $1', [key, Date.now() - 1]);
          }
          return result;
        });
      },
    } as unknown as pg.Pool;
    const limiter = createRateLimiter(config, { pool: ending });
    const erin = { tenantId: 'late', principalId: 'erin' };
    for (let i = 0; i < 5; i++) assert.equal((await limiter.consume(erin)).allowed, true);
    const refused = await limiter.consumeMore(erin, 3);
    assert.equal(refused.allowed, false);
    // A new window: one request charged, 5 left of 6, never more than the quota.
    const next = await limiter.consume(erin);
    assert.equal(next.allowed, true);
    assert.equal(remainingOf(next.headers.RateLimit).principal, 5);
  } finally {
    await pool.end();
    await database.drop();
  }
});
