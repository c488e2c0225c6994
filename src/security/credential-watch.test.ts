import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { authConfigSchema } from '../config/security-schema.ts';
import type { AppError } from '../errors/app-error.ts';
import { createApiKey, revokeApiKey } from './api-keys.ts';
import { createAuthenticator } from './authenticate.ts';
import { createCredentialWatch } from './credential-watch.ts';
import { createTestSecurityDb } from './test-support.ts';

const auth = authConfigSchema.parse({ mode: 'apikey' });

test('a store that cannot be read keeps streams open; the refusal once it answers ends them', async () => {
  // A short busy timeout: the re-check during the outage fails after it, not after the driver's 5 s.
  const t = await createTestSecurityDb({ busyTimeoutMs: 200 });
  const errors: unknown[] = [];
  let onError = (): void => {};
  const authenticator = createAuthenticator({ auth, db: t.db });
  const watch = createCredentialWatch({
    authenticator,
    recheckIntervalMs: 20,
    onRecheckError: (error) => {
      errors.push(error);
      onError();
    },
  });
  try {
    const { key, info } = await createApiKey(t.db, {
      tenantId: 'acme',
      name: 'k',
      roles: ['viewer'],
      createdBy: 't',
    });
    const source = { authorization: `Bearer ${key}` };
    const principal = await authenticator.authenticate(source);
    const [first, second] = [watch.watch(source, principal), watch.watch(source, principal)];
    assert.equal(watch.size(), 1, 'one credential, watched once');

    // An outage: another connection holds the database locked, so a re-check fails with
    // STORE_UNAVAILABLE (after the driver's busy timeout) without refusing the key.
    const locker = new Database(t.file);
    locker.exec('BEGIN EXCLUSIVE');
    await new Promise<void>((resolve) => {
      onError = resolve;
      first.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    locker.exec('ROLLBACK');
    locker.close();
    assert.equal((errors[0] as AppError).code, 'STORE_UNAVAILABLE');
    assert.equal(first.signal.aborted, false);

    // Revoked by another process: the next re-check ends both.
    await t.db
      .updateTable('api_keys')
      .set({ revoked_at: new Date().toISOString() })
      .where('id', '=', info.id)
      .execute();
    await new Promise((resolve) => second.signal.addEventListener('abort', resolve, { once: true }));
    assert.equal(first.signal.aborted, true);
    assert.equal(watch.size(), 0);
  } finally {
    watch.close();
    await t.cleanup();
  }
});

test('a released lease stops the watch of its credential once no other holds it', async () => {
  const t = await createTestSecurityDb();
  const authenticator = createAuthenticator({ auth, db: t.db });
  const watch = createCredentialWatch({ authenticator, recheckIntervalMs: 60_000 });
  try {
    const { key } = await createApiKey(t.db, {
      tenantId: 'acme',
      name: 'k',
      roles: ['viewer'],
      createdBy: 't',
    });
    const source = { authorization: `Bearer ${key}` };
    const principal = await authenticator.authenticate(source);
    const [first, second] = [watch.watch(source, principal), watch.watch(source, principal)];
    first.release();
    assert.equal(watch.size(), 1);
    second.release();
    assert.equal(watch.size(), 0);
    assert.equal(second.signal.aborted, false);
  } finally {
    watch.close();
    await t.cleanup();
  }
});

test('a re-check sweep reads one credential at a time, so it cannot take the whole database pool', async () => {
  const t = await createTestSecurityDb();
  const authenticator = createAuthenticator({ auth, db: t.db });
  let inFlight = 0;
  let maxInFlight = 0;
  const counted = {
    async authenticate(...args: Parameters<typeof authenticator.authenticate>) {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        return await authenticator.authenticate(...args);
      } finally {
        inFlight -= 1;
      }
    },
  };
  const watch = createCredentialWatch({ authenticator: counted, recheckIntervalMs: 60_000 });
  try {
    const leases = [];
    let last: { id: string; signal: AbortSignal } | undefined;
    for (let i = 0; i < 20; i += 1) {
      const { key, info } = await createApiKey(t.db, {
        tenantId: 'acme',
        name: `k${i}`,
        roles: ['viewer'],
        createdBy: 't',
      });
      const source = { authorization: `Bearer ${key}` };
      const lease = watch.watch(source, await authenticator.authenticate(source));
      leases.push(lease);
      last = { id: info.id, signal: lease.signal };
    }
    maxInFlight = 0;
    // A revocation here sweeps every watched credential at once.
    await revokeApiKey(t.db, 'acme', last?.id as string);
    await new Promise((resolve) => last?.signal.addEventListener('abort', resolve, { once: true }));
    assert.equal(maxInFlight, 1);
    assert.equal(watch.size(), 19);
    for (const lease of leases) lease.release();
  } finally {
    watch.close();
    await t.cleanup();
  }
});

test('a re-check ends the leases whose permission the principal no longer holds, and only those', async () => {
  const t = await createTestSecurityDb();
  const authenticator = createAuthenticator({ auth, db: t.db });
  const watch = createCredentialWatch({ authenticator, recheckIntervalMs: 20 });
  try {
    const { key } = await createApiKey(t.db, {
      tenantId: 'acme',
      name: 'k',
      roles: ['viewer'],
      createdBy: 't',
    });
    const source = { authorization: `Bearer ${key}` };
    const principal = await authenticator.authenticate(source);
    // As if the principal had held audit:read when the stream opened: the re-check reads its roles.
    const [reading, auditing, plain] = [
      watch.watch(source, principal, ['sessions:read']),
      watch.watch(source, principal, ['sessions:read', 'audit:read']),
      watch.watch(source, principal),
    ];
    await new Promise((resolve) => auditing.signal.addEventListener('abort', resolve, { once: true }));
    assert.equal(reading.signal.aborted, false);
    assert.equal(plain.signal.aborted, false);
    assert.equal(watch.size(), 1);
    reading.release();
    plain.release();
    assert.equal(watch.size(), 0);

    // Every lease ended that way: the credential is no longer watched.
    const only = watch.watch(source, principal, ['metrics:read']);
    await new Promise((resolve) => only.signal.addEventListener('abort', resolve, { once: true }));
    assert.equal(watch.size(), 0);
  } finally {
    watch.close();
    await t.cleanup();
  }
});
