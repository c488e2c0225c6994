import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createSecretStore } from './secret-store.ts';
import { generateKekEntry, parseKekRing } from './secrets.ts';
import { createTestSecurityDb, type TestSecurityDb } from './test-support.ts';

describe('tenant secret store', () => {
  let t: TestSecurityDb;
  before(async () => {
    t = await createTestSecurityDb();
  });
  after(async () => {
    await t.cleanup();
  });

  test('values are encrypted at rest, tenant-scoped, and survive KEK rotation + retirement', async () => {
    const k1 = generateKekEntry('k1');
    const k2 = generateKekEntry('k2');
    const store1 = createSecretStore(t.db, parseKekRing(k1));
    await store1.put('acme', 'openai', 'sk-acme');
    await store1.put('beta', 'openai', 'sk-beta');
    const raw = await t.db.selectFrom('tenant_secrets').selectAll().execute();
    assert.ok(raw.every((row) => !row.ciphertext.includes('sk-')));
    assert.equal(await store1.get('acme', 'openai'), 'sk-acme');
    assert.equal(await store1.get('acme', 'missing'), null);
    assert.deepEqual(await store1.listNames('acme'), ['openai']);

    // rotate: k2 active, k1 still present for reading; re-wrap everything, then drop k1
    const store2 = createSecretStore(t.db, parseKekRing(`${k2},${k1}`));
    assert.equal(await store2.rewrapAll(), 2);
    assert.equal(await store2.rewrapAll(), 0);
    const store3 = createSecretStore(t.db, parseKekRing(k2));
    assert.equal(await store3.get('acme', 'openai'), 'sk-acme');
    assert.equal(await store3.get('beta', 'openai'), 'sk-beta');

    // a row copied to another tenant does not decrypt there
    const acme = raw.find((row) => row.tenant_id === 'acme');
    await t.db
      .updateTable('tenant_secrets')
      .set({
        ciphertext: (
          await t.db
            .selectFrom('tenant_secrets')
            .select('ciphertext')
            .where('tenant_id', '=', 'acme')
            .executeTakeFirstOrThrow()
        ).ciphertext,
      })
      .where('tenant_id', '=', 'beta')
      .execute();
    await assert.rejects(store3.get('beta', 'openai'), /cannot be decrypted/);
    assert.ok(acme);
    assert.equal(await store3.delete('beta', 'openai'), true);
  });
});
