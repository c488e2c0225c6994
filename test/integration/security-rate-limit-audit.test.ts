// A caller over its rate limit cannot make the server append an audit record per request: the
// first refusal of a counter's window is recorded, later ones are only answered 429 and counted.
// Otherwise anyone, without credentials, could grow the append-only log (and fill its write queue,
// so that other records are lost) as fast as the server refuses requests.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createApiKey } from '../../src/security/api-keys.ts';
import { createTestSecurityDb } from '../../src/security/test-support.ts';
import { buildSecurityTestApp } from '../fixtures/security-app.ts';

const WRONG_KEY = 'Bearer maos_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

test('refusals past the rate limit: the first of the window is audited, the rest are not', async () => {
  const t = await createTestSecurityDb();
  const { app, security } = await buildSecurityTestApp(t, {
    auth: { mode: 'apikey' },
    rateLimit: {
      principal: { points: 3, windowSeconds: 600 },
      anonymous: { points: 2, windowSeconds: 600 },
    },
  });
  try {
    const { key } = await createApiKey(t.db, {
      tenantId: 'acme',
      name: 'k',
      roles: ['viewer'],
      createdBy: 't',
    });
    const before = (await security.auditLog.list({ limit: 1000 })).items.length;

    // Without credentials: 2 failed logins, then 8 refusals by the per-IP limit.
    const anonymous: number[] = [];
    for (let i = 0; i < 10; i += 1) {
      const response = await app.inject({
        method: 'POST',
        url: '/v1/sessions',
        headers: { authorization: WRONG_KEY },
      });
      anonymous.push(response.statusCode);
    }
    assert.deepEqual(anonymous, [401, 401, 429, 429, 429, 429, 429, 429, 429, 429]);

    // A viewer: 3 reads, then 7 refusals by the per-principal limit (reads and writes alike).
    const viewer: number[] = [];
    for (let i = 0; i < 10; i += 1) {
      const response = await app.inject({
        method: i % 2 === 0 ? 'GET' : 'POST',
        url: i % 2 === 0 ? '/v1/sessions' : '/v1/sessions/00000000-0000-4000-8000-000000000000/cancel',
        // Another address: the one above is out of failed logins, which refuses any credential.
        remoteAddress: '203.0.113.20',
        headers: { authorization: `Bearer ${key}` },
      });
      viewer.push(response.statusCode);
    }
    assert.deepEqual(viewer.slice(3), [429, 429, 429, 429, 429, 429, 429]);

    const records = (await security.auditLog.list({ limit: 1000 })).items.slice(before);
    // Without credentials: the 2 failed logins and the first refusal, recorded as rate limited (not
    // as a third failed login: the caller is told 429, whatever its credential).
    const anonymousRecords = records.filter((record) => record.actor.type === 'anonymous');
    assert.deepEqual(
      anonymousRecords.map((record) => [record.reason, record.outcome]),
      [
        ['unknown API key', 'failure'],
        ['unknown API key', 'failure'],
        ['rate limited', 'failure'],
      ],
      JSON.stringify(anonymousRecords, null, 1),
    );
    // The viewer: its write refused for a missing permission (403), and its first refusal.
    const viewerRecords = records.filter((record) => record.actor.type === 'service');
    assert.deepEqual(
      viewerRecords.map((record) => record.reason),
      ['missing permission sessions:cancel', 'rate limited'],
    );
  } finally {
    await app.close();
    await security.close();
    await t.cleanup();
  }
});

test('without credentials, the addresses of one IPv6 /64 share one counter', async () => {
  const t = await createTestSecurityDb();
  const { app, security } = await buildSecurityTestApp(t, {
    auth: { mode: 'apikey' },
    rateLimit: { anonymous: { points: 2, windowSeconds: 600 } },
  });
  try {
    const from = async (remoteAddress: string) =>
      (
        await app.inject({
          method: 'GET',
          url: '/v1/sessions',
          remoteAddress,
          headers: { authorization: WRONG_KEY },
        })
      ).statusCode;
    // A fresh address of the same /64 for every attempt: still limited after 2.
    const sameNetwork: number[] = [];
    for (let i = 1; i <= 5; i += 1) sameNetwork.push(await from(`2001:db8:5:6::${i.toString(16)}`));
    assert.deepEqual(sameNetwork, [401, 401, 429, 429, 429]);
    // Another /64 has its own counter.
    assert.equal(await from('2001:db8:5:7::1'), 401);
  } finally {
    await app.close();
    await security.close();
    await t.cleanup();
  }
});

test('an address out of failed logins is refused before its credential is looked at, a valid one too', async () => {
  const t = await createTestSecurityDb();
  const { app, security } = await buildSecurityTestApp(t, {
    auth: { mode: 'apikey' },
    rateLimit: { anonymous: { points: 2, windowSeconds: 600 } },
  });
  try {
    const create = (name: string) =>
      createApiKey(t.db, { tenantId: 'acme', name, roles: ['viewer'], createdBy: 't' });
    const used = await create('used');
    const fresh = await create('fresh');
    const call = (authorization: string, remoteAddress = '203.0.113.7') =>
      app.inject({ method: 'GET', url: '/v1/sessions', remoteAddress, headers: { authorization } });
    const lastUsed = async () =>
      (
        await t.db
          .selectFrom('api_keys')
          .select('last_used_at')
          .where('id', '=', fresh.info.id)
          .executeTakeFirstOrThrow()
      ).last_used_at;
    // Within the limit a valid key works after a failed login.
    assert.equal((await call(WRONG_KEY)).statusCode, 401);
    assert.equal((await call(`Bearer ${used.key}`)).statusCode, 200);
    assert.equal((await call(WRONG_KEY)).statusCode, 401);
    // Out of failed logins: valid keys are refused as a guess would be, and not read (the fresh
    // key's last use is not stamped).
    for (const key of [used.key, fresh.key]) {
      const refused = await call(`Bearer ${key}`);
      assert.equal(refused.statusCode, 429, refused.body);
      assert.equal(refused.json().code, 'RATE_LIMITED');
      assert.ok(Number(refused.headers['retry-after']) > 0, 'Retry-After');
    }
    assert.equal(await lastUsed(), null);
    assert.equal((await call(WRONG_KEY)).statusCode, 429);
    // Another address is not concerned.
    assert.equal((await call(`Bearer ${fresh.key}`, '203.0.113.9')).statusCode, 200);
    assert.notEqual(await lastUsed(), null);
  } finally {
    await app.close();
    await security.close();
    await t.cleanup();
  }
});
