import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { authConfigSchema } from '../config/security-schema.ts';
import { AppError } from '../errors/app-error.ts';
import { API_KEY_CACHE_TTL_MS, createApiKeyCache } from './api-key-cache.ts';
import { createApiKey, revokeApiKey } from './api-keys.ts';
import { createAuthenticator } from './authenticate.ts';
import type { SecurityTables } from './security-tables.ts';
import { createTestSecurityDb, type TestSecurityDb } from './test-support.ts';

const isInvalidToken = (reason: string) => (error: unknown) =>
  error instanceof AppError && error.code === 'INVALID_TOKEN' && error.message.includes(reason);

describe('API key cache', () => {
  let t: TestSecurityDb;
  let clock = Date.parse('2030-01-01T00:00:00Z');
  const now = () => new Date(clock);
  before(async () => {
    t = await createTestSecurityDb();
  });
  after(async () => {
    await t.cleanup();
  });

  function authenticator(ttlMs?: number) {
    return createAuthenticator({
      auth: authConfigSchema.parse({ mode: 'apikey' }),
      db: t.db,
      now,
      apiKeyCache: createApiKeyCache(ttlMs),
    });
  }

  async function newKey(tenantId: string, expiresAt: string | null = null) {
    return createApiKey(
      t.db,
      { tenantId, name: 'k', roles: ['viewer'], createdBy: 'test', expiresAt },
      now(),
    );
  }

  /** Revokes like the CLI or another replica: a direct write this process does not hear about. */
  async function revokeElsewhere(id: string) {
    await t.db
      .updateTable('api_keys')
      .set({ revoked_at: now().toISOString() })
      .where('id', '=', id)
      .execute();
  }

  test('a key revoked by another process stops working once the TTL has passed', async () => {
    const auth = authenticator();
    const { key, info } = await newKey('t-ttl');
    assert.equal((await auth.authenticate({ authorization: `Bearer ${key}` })).tenantId, 't-ttl');
    await revokeElsewhere(info.id);
    // Within the TTL the cached verification is reused: this is the documented staleness bound.
    clock += API_KEY_CACHE_TTL_MS - 1;
    assert.equal((await auth.authenticate({ 'x-api-key': key })).id, `key:${info.id}`);
    clock += 1;
    await assert.rejects(auth.authenticate({ 'x-api-key': key }), isInvalidToken('revoked'));
  });

  test('a key revoked in this process stops working on the next request', async () => {
    const auth = authenticator();
    const { key, info } = await newKey('t-now');
    await auth.authenticate({ 'x-api-key': key });
    await revokeApiKey(t.db, 't-now', info.prefix, now());
    await assert.rejects(auth.authenticate({ 'x-api-key': key }), isInvalidToken('revoked'));
  });

  test('a cached prefix with a wrong secret is refused', async () => {
    const auth = authenticator();
    const { key } = await newKey('t-secret');
    await auth.authenticate({ 'x-api-key': key });
    const last = key.at(-1) === 'A' ? 'B' : 'A';
    const forged = `${key.slice(0, -1)}${last}`;
    await assert.rejects(auth.authenticate({ 'x-api-key': forged }), isInvalidToken('unknown API key'));
    // The genuine key still works afterwards.
    assert.equal((await auth.authenticate({ 'x-api-key': key })).tenantId, 't-secret');
  });

  test('a key that expires while cached is refused at its expiry', async () => {
    const auth = authenticator();
    const expiresAt = new Date(clock + 1000).toISOString();
    const { key } = await newKey('t-exp', expiresAt);
    await auth.authenticate({ 'x-api-key': key });
    clock += 1000;
    await assert.rejects(auth.authenticate({ 'x-api-key': key }), isInvalidToken('expired'));
  });

  test('role bindings added later apply after the TTL; callers get their own copy of the roles', async () => {
    const auth = authenticator();
    const { key, info } = await newKey('t-roles');
    const first = await auth.authenticate({ 'x-api-key': key });
    assert.deepEqual(first.roles, ['viewer']);
    first.roles.push('admin');
    await t.db
      .insertInto('role_bindings')
      .values({
        tenant_id: 't-roles',
        principal_id: `key:${info.id}`,
        role: 'operator',
        created_at: now().toISOString(),
        created_by: 'test',
      })
      .execute();
    assert.deepEqual((await auth.authenticate({ 'x-api-key': key })).roles, ['viewer']);
    clock += API_KEY_CACHE_TTL_MS;
    assert.deepEqual((await auth.authenticate({ 'x-api-key': key })).roles.sort(), ['operator', 'viewer']);
  });

  test('concurrent requests with an uncached key share one database read', async () => {
    let keyReads = 0;
    const counted = new Kysely<SecurityTables>({
      dialect: new SqliteDialect({ database: new Database(t.file) }),
      log: (event) => {
        if (event.query.sql.includes('from "api_keys"')) keyReads++;
      },
    });
    try {
      const auth = createAuthenticator({
        auth: authConfigSchema.parse({ mode: 'apikey' }),
        db: counted,
        now,
        apiKeyCache: createApiKeyCache(),
      });
      const { key } = await newKey('t-flight');
      const principals = await Promise.all(
        Array.from({ length: 20 }, () => auth.authenticate({ 'x-api-key': key })),
      );
      assert.equal(keyReads, 1);
      assert.ok(principals.every((principal) => principal.tenantId === 't-flight'));
      principals[0]?.roles.push('admin');
      assert.deepEqual(principals[1]?.roles, ['viewer']);
      // A bad key shares the failure too, and every caller sees it.
      const bad = `${key.slice(0, -1)}${key.at(-1) === 'A' ? 'B' : 'A'}`;
      const failures = await Promise.allSettled(
        Array.from({ length: 5 }, () => auth.authenticate({ 'x-api-key': bad })),
      );
      assert.ok(failures.every((result) => result.status === 'rejected'));
    } finally {
      await counted.destroy();
    }
  });

  test('TTL 0 turns the cache off: every request reads the key', async () => {
    const auth = authenticator(0);
    const { key, info } = await newKey('t-off');
    await auth.authenticate({ 'x-api-key': key });
    await revokeElsewhere(info.id);
    await assert.rejects(auth.authenticate({ 'x-api-key': key }), isInvalidToken('revoked'));
  });
});
