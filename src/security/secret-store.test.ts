import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AppError } from '../errors/app-error.ts';
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

  test("a re-wrap keeps a value's updated_at: the tenant stored nothing (GET /v1/providers shows it)", async () => {
    const k1 = generateKekEntry('k1');
    const k2 = generateKekEntry('k2');
    const stored = new Date('2026-01-02T03:04:05.000Z');
    await createSecretStore(t.db, parseKekRing(k1), () => stored).put('dated', 'provider:gw', 'sk-dated');
    const later = () => new Date('2026-06-01T00:00:00.000Z');
    assert.equal(await createSecretStore(t.db, parseKekRing(`${k2},${k1}`), later).rewrapAll(), 1);
    const row = await t.db
      .selectFrom('tenant_secrets')
      .select(['kek_id', 'updated_at'])
      .where('tenant_id', '=', 'dated')
      .executeTakeFirstOrThrow();
    assert.deepEqual(row, { kek_id: 'k2', updated_at: stored.toISOString() });
    await t.db.deleteFrom('tenant_secrets').where('tenant_id', '=', 'dated').execute();
  });

  test('one value a re-wrap cannot read does not keep the others on the old KEK; the error names it', async () => {
    const k0 = generateKekEntry('k0');
    const k1 = generateKekEntry('k1');
    const k2 = generateKekEntry('k2');
    // Read first: a value wrapped with a KEK no longer in the ring (k0 was retired too early).
    await createSecretStore(t.db, parseKekRing(k0)).put('orphan', 'provider:gw', 'sk-lost');
    await createSecretStore(t.db, parseKekRing(k1)).put('kept', 'provider:gw', 'sk-kept');
    await assert.rejects(createSecretStore(t.db, parseKekRing(`${k2},${k1}`)).rewrapAll(), (e: unknown) => {
      assert.ok(e instanceof AppError && e.code === 'SECRET_UNREADABLE');
      assert.match(e.message, /re-wrapped 1 stored secret\(s\); 1 cannot be read/);
      assert.match(e.message, /tenant orphan, provider:gw: KEK k0 is not in the keyring/);
      assert.ok(!e.message.includes('sk-'));
      return true;
    });
    assert.equal(await createSecretStore(t.db, parseKekRing(k2)).get('kept', 'provider:gw'), 'sk-kept');
    await t.db.deleteFrom('tenant_secrets').where('tenant_id', 'in', ['orphan', 'kept']).execute();
  });

  test('a value unreadable at first but stored anew during the re-wrap is not reported as unreadable', async () => {
    // The tenant stores its key again (under the active KEK) while the re-wrap runs, and another
    // value changes under it too, so that the re-wrap reads the rows left on an old KEK a second time.
    const k0 = generateKekEntry('k0');
    const k1 = generateKekEntry('k1');
    const k2 = generateKekEntry('k2');
    const ring = parseKekRing(`${k2},${k1}`);
    await createSecretStore(t.db, parseKekRing(k0)).put('restored', 'provider:gw', 'sk-lost');
    await createSecretStore(t.db, parseKekRing(k1)).put('busy', 'provider:gw', 'sk-old');
    let armed = true;
    const racing = t.db.withPlugin({
      transformQuery: (args) => args.node,
      async transformResult(args) {
        // After the first pass's SELECT, before its UPDATEs.
        if (armed && args.result.rows.length > 0) {
          armed = false;
          await createSecretStore(t.db, ring).put('restored', 'provider:gw', 'sk-again');
          await createSecretStore(t.db, parseKekRing(k1)).put('busy', 'provider:gw', 'sk-new');
        }
        return args.result;
      },
    });
    assert.equal(await createSecretStore(racing, ring).rewrapAll(), 1);
    assert.equal(armed, false);
    const onlyK2 = createSecretStore(t.db, parseKekRing(k2));
    assert.equal(await onlyK2.get('restored', 'provider:gw'), 'sk-again');
    assert.equal(await onlyK2.get('busy', 'provider:gw'), 'sk-new');
    await t.db.deleteFrom('tenant_secrets').where('tenant_id', 'in', ['restored', 'busy']).execute();
  });

  test('a re-wrap whose value keeps changing under it fails instead of saying the old KEK can go', async () => {
    // A server not yet on the new keyring stores the value again (under the old KEK) at every pass.
    const k1 = generateKekEntry('k1');
    const k2 = generateKekEntry('k2');
    const ring = parseKekRing(`${k2},${k1}`);
    const oldServer = createSecretStore(t.db, parseKekRing(k1));
    await oldServer.put('churn', 'provider:gw', 'sk-0');
    let stores = 0;
    let armed = true;
    const racing = t.db.withPlugin({
      transformQuery: (args) => args.node,
      async transformResult(args) {
        if (armed && args.result.rows.some((row) => (row as { tenant_id?: unknown }).tenant_id === 'churn')) {
          stores += 1;
          await oldServer.put('churn', 'provider:gw', `sk-${stores}`);
        }
        return args.result;
      },
    });
    try {
      await assert.rejects(
        createSecretStore(racing, ring).rewrapAll(),
        (e: unknown) =>
          e instanceof AppError && e.code === 'CONFLICT' && /tenant churn, provider:gw/.test(e.message),
      );
      assert.ok(stores > 1);
      armed = false;
      assert.equal(await createSecretStore(racing, ring).rewrapAll(), 1);
      assert.equal(
        await createSecretStore(t.db, parseKekRing(k2)).get('churn', 'provider:gw'),
        `sk-${stores}`,
      );
    } finally {
      await t.db.deleteFrom('tenant_secrets').where('tenant_id', '=', 'churn').execute();
    }
  });

  for (const writer of ['new', 'old'] as const) {
    test(`a value stored during a re-wrap (${writer} keyring) is kept, not replaced by the re-wrapped old one`, async () => {
      // `maos secrets rewrap` runs while the servers do: a tenant stores a new key (or rotates a
      // webhook secret) between the re-wrap's read of the rows and its write of one of them, on a
      // server restarted with the new keyring or one not yet restarted.
      const k1 = generateKekEntry('k1');
      const k2 = generateKekEntry('k2');
      const ring = parseKekRing(`${k2},${k1}`);
      await createSecretStore(t.db, parseKekRing(k1)).put('race', 'openai', 'sk-old');
      const server = createSecretStore(t.db, writer === 'new' ? ring : parseKekRing(k1));
      let armed = true;
      const racing = t.db.withPlugin({
        transformQuery: (args) => args.node,
        async transformResult(args) {
          // After the re-wrap's SELECT of the rows still on an old KEK, before its UPDATE.
          if (armed && args.result.rows.length > 0) {
            armed = false;
            await server.put('race', 'openai', 'sk-new');
          }
          return args.result;
        },
      });
      await createSecretStore(racing, ring).rewrapAll();
      assert.equal(armed, false);
      // Readable with the new KEK alone: the value stored meanwhile was re-wrapped too.
      assert.equal(await createSecretStore(t.db, parseKekRing(k2)).get('race', 'openai'), 'sk-new');
      await server.delete('race', 'openai');
    });
  }
});
