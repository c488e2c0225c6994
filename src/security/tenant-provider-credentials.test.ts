// The tenant provider credential service on a real database: what a tenant can still do with a key
// it stored once the operator's configuration changed.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { AppError } from '../errors/app-error.ts';
import { generateKekEntry } from './secrets.ts';
import { createTenantProviderCredentials } from './tenant-provider-credentials.ts';
import { createTestSecurityDb, type TestSecurityDb } from './test-support.ts';

let t: TestSecurityDb;
before(async () => {
  t = await createTestSecurityDb();
});
after(async () => {
  await t.cleanup();
});

test('a tenant removes its stored key even after the operator removed the provider from the config', async () => {
  const kekRing = generateKekEntry('k1');
  const before = createTenantProviderCredentials({
    db: t.db,
    kekRing,
    providers: { gw: { type: 'openai-compatible' }, other: { type: 'openai' } },
    ssrf: {},
  });
  await before.put('acme', 'gw', { apiKey: 'sk-acme-gw' });
  await before.put('beta', 'gw', { apiKey: 'sk-beta-gw' });

  // Restarted without `gw`: the key stays stored (and would be used again were `gw` configured
  // again, maybe pointing elsewhere); its owner must still be able to remove it.
  const after = createTenantProviderCredentials({
    db: t.db,
    kekRing,
    providers: { other: { type: 'openai' } },
    ssrf: {},
  });
  await after.delete('acme', 'gw');
  assert.equal(await before.get('acme', 'gw'), null);
  assert.deepEqual(await before.get('beta', 'gw'), { apiKey: 'sk-beta-gw', baseURL: null });
  // Nothing stored, and no such provider: NOT_FOUND as before, naming the provider.
  for (const provider of ['gw', 'never']) {
    await assert.rejects(
      after.delete('acme', provider),
      (e: unknown) => e instanceof AppError && e.code === 'NOT_FOUND' && e.message.includes(`'${provider}'`),
    );
  }
  // Storing one for an unconfigured provider is still refused.
  await assert.rejects(
    after.put('acme', 'gw', { apiKey: 'sk-again' }),
    (e: unknown) => e instanceof AppError && e.code === 'NOT_FOUND',
  );
});

test("without secrets.kekRing a stored credential fails the tenant's calls instead of falling back to the server's key", async () => {
  const providers = { gw: { type: 'openai-compatible' } };
  const withRing = createTenantProviderCredentials({
    db: t.db,
    kekRing: generateKekEntry('k1'),
    providers,
    ssrf: {},
  });
  await withRing.put('ringless', 'gw', { apiKey: 'sk-ringless-gw' });
  // Restarted without the keyring: the tenant's key (and base URL: its own model server) cannot be
  // read. Its calls must not go silently to the operator's provider on the operator's account.
  const withoutRing = createTenantProviderCredentials({ db: t.db, kekRing: undefined, providers, ssrf: {} });
  await assert.rejects(
    withoutRing.get('ringless', 'gw'),
    (e: unknown) =>
      e instanceof AppError && e.code === 'SECRET_UNREADABLE' && /secrets\.kekRing/.test(e.message),
  );
  assert.equal(await withoutRing.get('no-credential', 'gw'), null);
  assert.equal((await withoutRing.list('ringless'))[0]?.tenantCredential, true);
  // Its owner can still remove it (no decryption needed), and calls then use the server's key.
  await withoutRing.delete('ringless', 'gw');
  assert.equal(await withoutRing.get('ringless', 'gw'), null);
  assert.equal((await withoutRing.list('ringless'))[0]?.tenantCredential, false);
});
