// The failed-login pre-check on PostgreSQL: the shared `rate_limits` counter of an address is read
// before its credential is verified only when this replica charged that address in the last window.
// Two HTTP layers with their own rate limiters on one database stand for two replicas; the real
// authenticator (API keys in the database) is wrapped to count the credentials it verifies, and each
// limiter's pool to count the reads of unauthenticated counters.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Fastify from 'fastify';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../../test/fixtures/postgres.ts';
import { configSchema } from '../config/schema.ts';
import { registerAuthentication } from '../http/plugins/authenticate.ts';
import { createLogger } from '../observability/logger.ts';
import { createDatabase, type DatabaseHandle } from '../store/db.ts';
import { createApiKey } from './api-keys.ts';
import type { Authenticator } from './authenticate.ts';
import { createSecurity, type Security } from './create-security.ts';
import { createHttpSecurity } from './http-security-plugin.ts';
import {
  createChargedNetworks,
  createCheckTurns,
  createRateLimiter,
  type RateLimitConfig,
} from './rate-limit.ts';
import type { SecurityDb } from './security-tables.ts';

const WRONG_KEY = `maos_000000000000_${'A'.repeat(43)}`;
const limits: RateLimitConfig = {
  enabled: true,
  principal: { points: 1000, windowSeconds: 600 },
  tenant: { points: 1000, windowSeconds: 600 },
  anonymous: { points: 2, windowSeconds: 600 },
  maxConcurrentSessionsPerTenant: 0,
  maxDailyTokensPerTenant: 0,
};

/**
 * A pool that counts the reads (`SELECT`) of unauthenticated counters it is asked to make. With
 * `holdCharges`, it sends the charge (upsert) of an unauthenticated counter only once a read of that
 * counter has been answered, or 200 ms after it was asked (the time only ends the wait when no read
 * comes; it decides no outcome): a read that does not wait for the charge then overtakes it.
 */
function countingPool(url: string, holdCharges = false) {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  const reads: string[] = [];
  const heldCharges: string[] = [];
  const readAnswered = new Map<string, () => void>();
  const query = pool.query.bind(pool) as (config: pg.QueryConfig) => Promise<unknown>;
  (pool as unknown as { query: typeof query }).query = (config) => {
    const key = config.values?.[0];
    if (typeof key !== 'string' || !key.startsWith('maos-anonymous:')) return query(config);
    if (/^\s*SELECT/i.test(config.text)) {
      reads.push(key);
      return query(config).finally(() => readAnswered.get(key)?.());
    }
    if (!holdCharges) return query(config);
    heldCharges.push(key);
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 200);
      readAnswered.set(key, () => {
        clearTimeout(timer);
        resolve();
      });
    }).then(() => query(config));
  };
  return { pool, reads, heldCharges };
}

/** A replica's HTTP layer: its own limiter (and memory) on its own pool of the shared database. */
async function startReplica(
  url: string,
  security: Security,
  options: { holdKey?: Promise<void>; holdCharges?: boolean; holdUntilChecked?: number } = {},
) {
  const { pool, reads, heldCharges } = countingPool(url, options.holdCharges);
  const checked: string[] = [];
  const started: (() => void)[] = [];
  const authenticator: Authenticator = {
    mode: security.authenticator.mode,
    async authenticate(source, authOptions) {
      checked.push(String(source.authorization));
      // With holdUntilChecked: each verification starts only once that many have begun, or 200 ms
      // after it was asked (the time only ends the wait when no more come; it decides no outcome),
      // so that the credentials of a burst are in verification at once.
      const wanted = options.holdUntilChecked ?? 0;
      if (checked.length >= wanted) for (const go of started.splice(0)) go();
      else {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 200);
          started.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      // Lets a test hold a valid key's answer until another request is answered.
      const principal = await security.authenticator.authenticate(source, authOptions);
      await options.holdKey;
      return principal;
    },
  };
  const rateLimiter = createRateLimiter(limits, { pool });
  const http = createHttpSecurity({
    authenticator,
    rateLimiter,
    auditLog: security.auditLog,
    realm: 'maos',
    logger: createLogger({ level: 'silent' }),
  });
  const app = Fastify();
  registerAuthentication(app, http.authenticate);
  await http.plugin(app, {});
  app.get('/x', { config: { permission: 'sessions:read' } }, async () => ({ ok: true }));
  await app.ready();
  const call = async (ip: string, credential: string) =>
    (
      await app.inject({
        method: 'GET',
        url: '/x',
        remoteAddress: ip,
        headers: { authorization: `Bearer ${credential}` },
      })
    ).statusCode;
  return {
    app,
    call,
    rateLimiter,
    /** Credentials verified so far. */
    checked,
    /** Keys of the unauthenticated counters read so far. */
    reads,
    /** Keys of the unauthenticated counters whose charge was held (holdCharges). */
    heldCharges,
    async close() {
      http.close();
      await app.close();
      await pool.end();
    },
  };
}

describe('failed-login pre-check on PostgreSQL', { timeout: 60_000 }, () => {
  let database: TestDatabase;
  let handle: DatabaseHandle;
  let security: Security;
  let dir: string;
  let key: string;
  const replicas: { close(): Promise<void> }[] = [];
  const replica = async (options?: Parameters<typeof startReplica>[2]) => {
    const started = await startReplica(database.url, security, options);
    replicas.push(started);
    return started;
  };

  before(async () => {
    database = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'maos-precheck-'));
    const config = configSchema.parse({
      dataDir: dir,
      store: { url: database.url, poolSize: 2 },
      auth: { mode: 'apikey' },
    });
    handle = createDatabase(config);
    const db = handle.db as unknown as SecurityDb;
    security = createSecurity({ config, db, logger: createLogger({ level: 'silent' }), quotas: null });
    ({ key } = await createApiKey(db, { tenantId: 'acme', name: 'k', roles: ['viewer'], createdBy: 't' }));
  });
  after(async () => {
    await Promise.allSettled(replicas.map((started) => started.close()));
    await security?.close();
    await handle?.close();
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('an address that never failed a login is not read; its valid key is answered', async () => {
    const a = await replica();
    assert.deepEqual([await a.call('192.0.2.1', key), await a.call('192.0.2.1', key)], [200, 200]);
    assert.deepEqual(a.reads, []);
    assert.equal(a.checked.length, 2);
  });

  test('an exhausted address is refused unchecked where it failed, and elsewhere after one more failure', async () => {
    const a = await replica();
    const b = await replica();
    const ip = '192.0.2.2';
    // Two failed logins on A use up the address's budget (points 2).
    assert.deepEqual([await a.call(ip, WRONG_KEY), await a.call(ip, WRONG_KEY)], [401, 401]);
    const checkedOnA = a.checked.length;
    assert.equal(await a.call(ip, key), 429);
    assert.equal(a.checked.length, checkedOnA, 'A refuses the valid key before verifying it');
    assert.ok(a.reads.length > 0);
    // B has charged nothing of the address: its first credential is verified, unread (the one
    // extra guess), then charged and refused; from then on B reads and refuses unchecked.
    assert.equal(await b.call(ip, WRONG_KEY), 429);
    assert.equal(b.checked.length, 1);
    assert.equal(await b.call(ip, key), 429);
    assert.equal(await b.call(ip, WRONG_KEY), 429);
    assert.equal(b.checked.length, 1, 'B refuses both without verifying them');
    assert.ok(b.reads.length >= 2);
    // Another address stays unread and served on both.
    assert.deepEqual([await a.call('192.0.2.3', key), await b.call('192.0.2.3', key)], [200, 200]);
    assert.ok(!a.reads.some((read) => read.endsWith('192.0.2.3')));
    assert.ok(!b.reads.some((read) => read.endsWith('192.0.2.3')));
  });

  test('a failure charged while a valid key is checked makes the key wait for the counter', async () => {
    // B holds the valid key's answer until the wrong guess sent with it has been answered.
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const a = await replica();
    const b = await replica({ holdKey: held });
    const ip = '192.0.2.4';
    assert.deepEqual([await a.call(ip, WRONG_KEY), await a.call(ip, WRONG_KEY)], [401, 401]);
    // Sent to B together, as a burst of guesses would be: neither is pre-checked (B has not charged
    // the address), but the key is accepted only after the wrong guess was charged here.
    let answered = false;
    const valid = b.call(ip, key).finally(() => {
      answered = true;
    });
    while (b.checked.length === 0 && !answered) await new Promise((resolve) => setImmediate(resolve));
    const wrong = await b.call(ip, WRONG_KEY);
    release();
    assert.deepEqual([wrong, await valid], [429, 429]);
  });

  test('a failure whose charge is still on its way to the database is counted before a key checked meanwhile is accepted', async () => {
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const a = await replica();
    const b = await replica({ holdKey: held, holdCharges: true });
    const ip = '192.0.2.5';
    // One failed login on A: one guess left (points 2).
    assert.equal(await a.call(ip, WRONG_KEY), 401);
    // On B the valid key is verified and held; the last guess fails meanwhile, and its charge (the
    // one that uses the budget up) is noted on B but not yet counted in the database.
    let answered = false;
    const valid = b.call(ip, key).finally(() => {
      answered = true;
    });
    while (b.checked.length === 0 && !answered) await new Promise((resolve) => setImmediate(resolve));
    const wrong = b.call(ip, WRONG_KEY);
    while (b.heldCharges.length === 0) await new Promise((resolve) => setImmediate(resolve));
    release();
    // As if the failure had come first: the key is refused, not accepted on a read taken before it.
    assert.deepEqual([await wrong, await valid], [401, 429]);
  });

  test('a burst of wrong credentials from one address is verified at most `points` at a time: the rest wait, then are refused unchecked', async () => {
    const a = await replica({ holdUntilChecked: 20 });
    const ip = '192.0.2.6';
    const answers = await Promise.all(Array.from({ length: 20 }, () => a.call(ip, WRONG_KEY)));
    // Points 2: two verified together; a third may start as the first failure frees its slot,
    // before the second is charged. Every other guess waited and found the address exhausted.
    assert.ok(a.checked.length <= 3, `${a.checked.length} credentials verified`);
    assert.equal(answers.filter((status) => status === 401).length, 2, JSON.stringify(answers));
    assert.equal(answers.filter((status) => status === 429).length, 18, JSON.stringify(answers));
    // Another address is not held back by it.
    assert.equal(await a.call('192.0.2.7', key), 200);
  });

  test('every address of an IPv6 /64 shares the memory of its failures', async () => {
    const a = await replica();
    assert.deepEqual(
      [await a.call('2001:db8:5:6::1', WRONG_KEY), await a.call('2001:db8:5:6::2', WRONG_KEY)],
      [401, 401],
    );
    const checked = a.checked.length;
    assert.equal(await a.call('2001:db8:5:6:ffff::3', key), 429);
    assert.equal(a.checked.length, checked);
    assert.equal(await a.call('2001:db8:5:7::1', key), 200);
  });
});

describe('turns of credential verification', () => {
  test('at most `width` per network at once; the next in line gets a turn given back, in order', async () => {
    const turns = createCheckTurns(2);
    const first = await turns.take('a');
    const second = await turns.take('a');
    const order: string[] = [];
    const third = turns.take('a').then((giveBack) => {
      order.push('third');
      return giveBack;
    });
    const fourth = turns.take('a').then((giveBack) => {
      order.push('fourth');
      return giveBack;
    });
    // Another network has turns of its own.
    (await turns.take('b'))();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, []);
    first();
    first(); // given back once only
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, ['third']);
    second();
    (await third)();
    (await fourth)();
    assert.deepEqual(order, ['third', 'fourth']);
    // All given back: a new burst gets `width` turns at once again.
    const again = [await turns.take('a'), await turns.take('a')];
    for (const giveBack of again) giveBack();
  });
});

describe('memory of charged networks', () => {
  test('forgets a network a window after its last charge', () => {
    const networks = createChargedNetworks(1000, 10);
    assert.equal(networks.suspects('a', 0), false);
    networks.note('a', 0);
    assert.equal(networks.suspects('a', 999), true);
    networks.note('a', 500);
    assert.equal(networks.suspects('a', 1499), true);
    assert.equal(networks.suspects('a', 1500), false);
  });

  test('past its size, every network is read until the dropped one would have been forgotten', () => {
    const networks = createChargedNetworks(1000, 2);
    networks.note('a', 0);
    const markOfA = networks.mark('a');
    networks.note('b', 10);
    assert.equal(networks.suspects('never-charged', 20), false);
    networks.note('c', 20);
    // `a` was dropped inside its window: no network may skip the read until 1000.
    assert.equal(networks.suspects('never-charged', 999), true);
    assert.equal(networks.suspects('never-charged', 1000), false);
    assert.notEqual(networks.mark('a'), markOfA);
    // Notes ended by their window are dropped without that.
    const ended = createChargedNetworks(1000, 2);
    ended.note('a', 0);
    ended.note('b', 10);
    ended.note('c', 1005);
    assert.equal(ended.suspects('never-charged', 1006), false);
  });

  test('a mark changes with each charge of its network, and with no other', () => {
    const networks = createChargedNetworks(1000, 10);
    const before = networks.mark('a');
    networks.note('b', 0);
    assert.equal(networks.mark('a'), before);
    networks.note('a', 0);
    const once = networks.mark('a');
    assert.notEqual(once, before);
    networks.note('a', 1);
    assert.notEqual(networks.mark('a'), once);
  });
});
