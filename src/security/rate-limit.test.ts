import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import pg from 'pg';
import { clientNetwork, counterKey, createRateLimiter } from './rate-limit.ts';

/** A local port with nothing listening (connections are refused at once). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === 'object' && address ? address.port : 0;
}

/** Minimal RFC 8941 List parser for items that are sf-strings with integer parameters. */
function parseSfList(value: string): { item: string; params: Record<string, number> }[] {
  return value.split(/\s*,\s*/).map((member) => {
    const match =
      /^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"((?:;[a-z*][a-z0-9_.*-]*=-?\d{1,15})*)$/.exec(member);
    assert.ok(match, `not a structured-field list member: ${member}`);
    const params: Record<string, number> = {};
    for (const param of (match[2] as string).split(';').slice(1)) {
      const [key, raw] = param.split('=') as [string, string];
      assert.ok(!(key in params), `duplicate parameter ${key}`);
      params[key] = Number(raw);
    }
    return { item: match[1] as string, params };
  });
}

const config = {
  enabled: true,
  principal: { points: 3, windowSeconds: 60 },
  tenant: { points: 5, windowSeconds: 120 },
  anonymous: { points: 2, windowSeconds: 30 },
  maxConcurrentSessionsPerTenant: 0,
  maxDailyTokensPerTenant: 0,
};

describe('rate limits', () => {
  test('headers parse as structured fields and count down', async () => {
    const limiter = createRateLimiter(config);
    const first = await limiter.consume({ tenantId: 't1', principalId: 'p1' });
    assert.equal(first.allowed, true);
    const policy = parseSfList(first.headers['RateLimit-Policy'] as string);
    assert.deepEqual(policy, [
      { item: 'tenant', params: { q: 5, w: 120 } },
      { item: 'principal', params: { q: 3, w: 60 } },
    ]);
    const state = parseSfList(first.headers.RateLimit as string);
    assert.deepEqual(
      state.map((s) => [s.item, s.params.r]),
      [
        ['tenant', 4],
        ['principal', 2],
      ],
    );
    assert.ok((state[1]?.params.t as number) > 0 && (state[1]?.params.t as number) <= 60);
  });

  test('the N+1th request of a principal is refused with Retry-After; others are unaffected', async () => {
    const limiter = createRateLimiter(config);
    for (let i = 0; i < 3; i += 1)
      assert.equal((await limiter.consume({ tenantId: 't1', principalId: 'p1' })).allowed, true);
    const refused = await limiter.consume({ tenantId: 't1', principalId: 'p1' });
    assert.equal(refused.allowed, false);
    assert.ok(refused.retryAfterSeconds >= 1 && refused.retryAfterSeconds <= 60);
    assert.equal(parseSfList(refused.headers.RateLimit as string)[1]?.params.r, 0);
    assert.equal((await limiter.consume({ tenantId: 't1', principalId: 'p2' })).allowed, true);
  });

  test('with both caps hit, Retry-After is the later of their resets: when the request would be allowed', async () => {
    // The principal's window resets long before the tenant's.
    const limits = {
      ...config,
      principal: { points: 2, windowSeconds: 10 },
      tenant: { points: 3, windowSeconds: 100 },
    };
    const limiter = createRateLimiter(limits);
    const alice = { tenantId: 'both', principalId: 'alice' };
    for (let i = 0; i < 2; i += 1) assert.equal((await limiter.consume(alice)).allowed, true);
    // Refused by the principal's cap; the tenant's is reached by the same request (no point left):
    // a retry at the principal's reset would be refused by the tenant's until its own reset.
    const refused = await limiter.consume(alice);
    assert.equal(refused.allowed, false);
    const [tenant, principal] = refused.policies;
    assert.deepEqual(
      [tenant?.name, tenant?.remaining, principal?.name, principal?.remaining],
      ['tenant', 0, 'principal', 0],
    );
    assert.ok((principal?.resetSeconds as number) <= 10);
    assert.ok((tenant?.resetSeconds as number) > 10);
    assert.equal(refused.retryAfterSeconds, tenant?.resetSeconds);
    // Both refused outright: the same, the tenant's reset.
    const again = await limiter.consume(alice);
    assert.equal(again.allowed, false);
    assert.equal(again.retryAfterSeconds, again.policies[0]?.resetSeconds);
    assert.ok(again.retryAfterSeconds > 10);
    // A cap with points left does not hold a refusal back: only the principal's reset counts.
    const roomy = createRateLimiter({ ...limits, tenant: { points: 50, windowSeconds: 100 } });
    for (let i = 0; i < 2; i += 1) await roomy.consume(alice);
    const byPrincipal = await roomy.consume(alice);
    assert.equal(byPrincipal.allowed, false);
    assert.equal(byPrincipal.retryAfterSeconds, byPrincipal.policies[1]?.resetSeconds);
    assert.ok(byPrincipal.retryAfterSeconds <= 10);
  });

  test('the tenant limit caps all principals together', async () => {
    const limiter = createRateLimiter(config);
    const results = [];
    for (let i = 0; i < 6; i += 1)
      results.push((await limiter.consume({ tenantId: 't9', principalId: `p${i}` })).allowed);
    assert.deepEqual(results, [true, true, true, true, true, false]);
    assert.equal((await limiter.consume({ tenantId: 't10', principalId: 'p0' })).allowed, true);
  });

  test('anonymous requests are limited per IP; disabled limiter allows all without headers', async () => {
    const limiter = createRateLimiter(config);
    await limiter.consume({ ip: '10.0.0.1' });
    await limiter.consume({ ip: '10.0.0.1' });
    assert.equal((await limiter.consume({ ip: '10.0.0.1' })).allowed, false);
    assert.equal((await limiter.consume({ ip: '10.0.0.2' })).allowed, true);
    const off = createRateLimiter({ ...config, enabled: false });
    const decision = await off.consume({ ip: '10.0.0.1' });
    assert.equal(decision.allowed, true);
    assert.deepEqual(decision.headers, {});
  });

  test('counter keys hold no NUL, keep parts apart and stay short', () => {
    assert.notEqual(counterKey(['a/b', 'c']), counterKey(['a', 'b/c']));
    assert.equal(counterKey(['t\u0000x', 'p']).includes('\u0000'), false);
    const long = counterKey(['t', 'p'.repeat(500)]);
    assert.match(long, /^sha256:[0-9a-f]{64}$/);
  });

  test('only the first refusal of a window is marked firstRefusal (the one the audit log records)', async () => {
    const limiter = createRateLimiter(config);
    const marks: (boolean | undefined)[] = [];
    for (let i = 0; i < 5; i += 1) marks.push((await limiter.consume({ ip: '192.0.2.7' })).firstRefusal);
    assert.deepEqual(marks, [undefined, undefined, true, false, false]);
    // Another counter has its own first refusal.
    await limiter.consume({ ip: '192.0.2.8' });
    await limiter.consume({ ip: '192.0.2.8' });
    assert.equal((await limiter.consume({ ip: '192.0.2.8' })).firstRefusal, true);
  });

  test('a step of the wall clock neither stretches nor ends a window of the memory counters', async (t) => {
    const limits = {
      ...config,
      principal: { points: 1, windowSeconds: 60 },
      tenant: { points: 100, windowSeconds: 60 },
      anonymous: { points: 1, windowSeconds: 60 },
    };
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    const limiter = createRateLimiter(limits);
    const caller = { tenantId: 't1', principalId: 'p1' };
    assert.equal((await limiter.consume(caller)).allowed, true);
    assert.equal((await limiter.consume({ ip: '192.0.2.7' })).allowed, true);
    // The clock steps back an hour (NTP, a resumed VM): the window still ends within its 60 s, not
    // an hour later, and Retry-After says so.
    t.mock.timers.setTime(Date.now() - 3_600_000);
    const refused = await limiter.consume(caller);
    assert.equal(refused.allowed, false);
    assert.ok(refused.retryAfterSeconds <= 60, `Retry-After ${refused.retryAfterSeconds} s`);
    const state = parseSfList(refused.headers.RateLimit as string);
    assert.ok(
      state.every((s) => (s.params.t as number) <= 60),
      refused.headers.RateLimit,
    );
    // A step forward of two hours ends no window either: the caller is still refused, and so is
    // the address out of failed logins.
    t.mock.timers.setTime(Date.now() + 7_200_000);
    assert.equal((await limiter.consume(caller)).allowed, false);
    assert.equal(await limiter.isExhausted('192.0.2.7'), true);
  });

  test('callers without credentials are counted per IPv4 address and per IPv6 /64', () => {
    assert.equal(clientNetwork('203.0.113.9'), '203.0.113.9');
    assert.equal(clientNetwork('::ffff:203.0.113.9'), '203.0.113.9');
    assert.equal(clientNetwork('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(clientNetwork('2001:0db8:0001:0002:ffff:1:2:3'), '2001:db8:1:2::/64');
    assert.equal(clientNetwork('2001:db8::7'), '2001:db8:0:0::/64');
    assert.equal(clientNetwork('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(clientNetwork('::1'), '0:0:0:0::/64');
    // A port forwarded with the address (Azure Application Gateway) is the connection's, not the caller's.
    assert.equal(clientNetwork('203.0.113.9:51234'), '203.0.113.9');
    assert.equal(clientNetwork('[2001:db8:1:2:aaaa::1]:443'), '2001:db8:1:2::/64');
    assert.equal(clientNetwork('[::ffff:203.0.113.9]:443'), '203.0.113.9');
    assert.equal(clientNetwork('[2001:db8::7]'), '2001:db8:0:0::/64');
    // Without brackets: a port after an IPv4-mapped address (as IIS/ARR writes it), or after an
    // IPv6 address that is no address with it (a fifth digit, a ninth group), is the connection's.
    assert.equal(clientNetwork('::ffff:203.0.113.9:51234'), '203.0.113.9');
    assert.equal(clientNetwork('2001:db8:1:2:aaaa::1:51234'), '2001:db8:1:2::/64');
    assert.equal(clientNetwork('2001:db8:1:2:3:4:5:6:443'), '2001:db8:1:2::/64');
    // An address as it stands keeps its last group, which no reading tells from a port.
    assert.equal(clientNetwork('2001:db8::1:443'), '2001:db8:0:0::/64');
    assert.equal(clientNetwork('1:2:3:4:5:6:7:8'), '1:2:3:4::/64');
  });

  test('an unreachable shared store falls back to per-process counters instead of failing', async () => {
    const pool = new pg.Pool({
      host: '127.0.0.1',
      port: await closedPort(),
      user: 'nobody',
      database: 'none',
      connectionTimeoutMillis: 2000,
    });
    pool.on('error', () => undefined);
    const errors: unknown[] = [];
    try {
      const limiter = createRateLimiter(config, { pool, onStoreError: (error) => errors.push(error) });
      const decisions = [];
      for (let i = 0; i < 5; i += 1)
        decisions.push(await limiter.consume({ tenantId: 't1', principalId: 'p1' }));
      // The principal limit (3) still holds, from the memory insurance.
      assert.deepEqual(
        decisions.map((decision) => decision.allowed),
        [true, true, true, false, false],
      );
      assert.deepEqual(
        decisions.map((decision) => decision.firstRefusal),
        [undefined, undefined, undefined, true, false],
      );
      assert.ok(errors.length >= 4, 'every failed store query is reported');
    } finally {
      await pool.end();
    }
  });
});
