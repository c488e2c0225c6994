import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AppError } from '../errors/app-error.ts';
import { createApiKey, hashSecret, listApiKeys, revokeApiKey, verifyApiKey } from './api-keys.ts';
import { createTestSecurityDb, type TestSecurityDb } from './test-support.ts';

function isInvalid(reason: string) {
  return (e: unknown) => e instanceof AppError && e.code === 'INVALID_TOKEN' && e.message.includes(reason);
}

describe('api keys', () => {
  let t: TestSecurityDb;
  before(async () => {
    t = await createTestSecurityDb();
  });
  after(async () => {
    await t.cleanup();
  });

  test('created key verifies, maps to tenant and roles, and only its hash is stored', async () => {
    const { key, info } = await createApiKey(t.db, {
      tenantId: 't1',
      name: 'ci',
      roles: ['operator', 'operator'],
      createdBy: 'cli',
    });
    assert.match(key, /^maos_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(info.roles, ['operator']);
    const row = await t.db
      .selectFrom('api_keys')
      .selectAll()
      .where('id', '=', info.id)
      .executeTakeFirstOrThrow();
    const secret = key.slice(18);
    assert.equal(row.hash, hashSecret(secret));
    assert.ok(!JSON.stringify(row).includes(secret), 'plaintext secret must not be stored');
    const verified = await verifyApiKey(t.db, key);
    assert.equal(verified.tenantId, 't1');
    assert.deepEqual(verified.roles, ['operator']);
    assert.ok(verified.lastUsedAt);
  });

  test('wrong secret, unknown prefix and malformed keys are refused', async () => {
    const { key } = await createApiKey(t.db, {
      tenantId: 't1',
      name: 'x',
      roles: ['viewer'],
      createdBy: 'a',
    });
    const flipped = key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A');
    await assert.rejects(verifyApiKey(t.db, flipped), isInvalid('unknown'));
    await assert.rejects(verifyApiKey(t.db, `maos_000000000000_${key.slice(18)}`), isInvalid('unknown'));
    await assert.rejects(verifyApiKey(t.db, 'maos_abc'), isInvalid('malformed'));
    await assert.rejects(verifyApiKey(t.db, ''), isInvalid('malformed'));
  });

  test('revocation is immediate and tenant-scoped', async () => {
    const { key, info } = await createApiKey(t.db, {
      tenantId: 't1',
      name: 'r',
      roles: ['viewer'],
      createdBy: 'a',
    });
    await assert.rejects(
      revokeApiKey(t.db, 't2', info.id),
      (e: unknown) => e instanceof AppError && e.code === 'NOT_FOUND',
    );
    await verifyApiKey(t.db, key);
    const revoked = await revokeApiKey(t.db, 't1', info.prefix);
    assert.ok(revoked.revokedAt);
    await assert.rejects(verifyApiKey(t.db, key), isInvalid('revoked'));
    const again = await revokeApiKey(t.db, 't1', info.id);
    assert.equal(again.revokedAt, revoked.revokedAt);
  });

  test('two revocations at once keep the first revocation time, and both answer it', async () => {
    const { info } = await createApiKey(t.db, {
      tenantId: 't1',
      name: 'twice',
      roles: ['viewer'],
      createdBy: 'a',
    });
    const first = new Date('2026-03-01T10:00:00.000Z');
    const second = new Date('2026-03-01T10:00:05.000Z');
    // Both read the key unrevoked before either writes (the API and the CLI, or two replicas).
    const answers = await Promise.all([
      revokeApiKey(t.db, 't1', info.id, first),
      revokeApiKey(t.db, 't1', info.prefix, second),
    ]);
    const stored = await t.db
      .selectFrom('api_keys')
      .select('revoked_at')
      .where('id', '=', info.id)
      .executeTakeFirstOrThrow();
    assert.equal(stored.revoked_at, first.toISOString());
    assert.deepEqual(
      answers.map((answer) => answer.revokedAt),
      [first.toISOString(), first.toISOString()],
    );
  });

  test('an expiry past year 9999 in UTC is refused: it has no RFC 3339 form to list it in', async () => {
    // Year 9999 in its offset, year 10000 in UTC: stored, it was listed as `+010000-01-01T…`.
    for (const expiresAt of ['9999-12-31T23:59:59-23:59', '+010000-01-01T00:00:00Z']) {
      await assert.rejects(
        createApiKey(t.db, { tenantId: 't1', name: 'far', roles: ['viewer'], createdBy: 'a', expiresAt }),
        (e: unknown) =>
          e instanceof AppError && e.code === 'VALIDATION_FAILED' && /year 9999/.test(e.message),
      );
    }
    const last = await createApiKey(t.db, {
      tenantId: 't1',
      name: 'far',
      roles: ['viewer'],
      createdBy: 'a',
      expiresAt: '9999-12-31T23:59:59.999Z',
    });
    assert.equal(last.info.expiresAt, '9999-12-31T23:59:59.999Z');
  });

  test('expiry is enforced', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const { key } = await createApiKey(
      t.db,
      { tenantId: 't1', name: 'e', roles: ['viewer'], createdBy: 'a', expiresAt: '2030-01-02T00:00:00Z' },
      now,
    );
    await verifyApiKey(t.db, key, now);
    await assert.rejects(verifyApiKey(t.db, key, new Date('2030-01-02T00:00:00Z')), isInvalid('expired'));
    await assert.rejects(
      createApiKey(
        t.db,
        { tenantId: 't1', name: 'e', roles: ['viewer'], createdBy: 'a', expiresAt: '2029-01-01' },
        now,
      ),
      (e: unknown) => e instanceof AppError && e.code === 'VALIDATION_FAILED',
    );
  });

  test('unknown roles and empty role lists are rejected', async () => {
    for (const roles of [[], ['root'], ['viewer', 'superuser']]) {
      await assert.rejects(
        createApiKey(t.db, { tenantId: 't1', name: 'n', roles, createdBy: 'a' }),
        (e: unknown) => e instanceof AppError && e.code === 'VALIDATION_FAILED',
      );
    }
  });

  test('a name that is blank, too long or holds control characters is refused, as the API refuses it', async () => {
    const cases: Array<[string, string]> = [
      ['  ', 'Key name must not be blank'],
      ['x'.repeat(201), 'Key name must be at most 200 characters'],
      ['deploy\nbot', 'Key name must not contain control characters (line breaks, tabs …)'],
      ['red\u001b[31m', 'Key name must not contain control characters (line breaks, tabs …)'],
      ['nul\u0000', 'Key name must not contain control characters (line breaks, tabs …)'],
    ];
    for (const [name, message] of cases) {
      await assert.rejects(
        createApiKey(t.db, { tenantId: 't4', name, roles: ['viewer'], createdBy: 'a' }),
        (e: unknown) => e instanceof AppError && e.code === 'VALIDATION_FAILED' && e.message === message,
        JSON.stringify(name),
      );
    }
    assert.deepEqual(await listApiKeys(t.db, 't4'), []);
    const { info } = await createApiKey(t.db, {
      tenantId: 't4',
      name: ' ok ',
      roles: ['viewer'],
      createdBy: 'a',
    });
    assert.equal(info.name, 'ok');
  });

  test('list shows only the tenant’s keys and never the hash', async () => {
    await createApiKey(t.db, { tenantId: 't3', name: 'one', roles: ['admin'], createdBy: 'a' });
    const keys = await listApiKeys(t.db, 't3');
    assert.equal(keys.length, 1);
    assert.equal(keys[0]?.name, 'one');
    assert.ok(!('hash' in (keys[0] as object)));
    assert.equal((await listApiKeys(t.db, 'nobody')).length, 0);
  });
});
