// An API key whose stored roles cannot be read (a hand edit of api_keys.roles gone wrong) has no
// role: it still authenticates (GET /v1/me answers it) and is refused everywhere else (403), and the
// tenant's key list shows it with `roles: []`. The JSON.parse of its roles made every request with
// that key a 500, and GET /v1/admin/keys a 500 for the whole tenant, so an administrator could not
// even list the keys to find it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { DAMAGEABLE_STORES, type DamageableServer, useDamageableServer } from '../fixtures/damaged-rows.ts';
import { requestJson } from '../fixtures/server.ts';

async function checkDamagedKey({ server, execute }: DamageableServer) {
  const db = server.app.database.db as unknown as SecurityDb;
  const mint = async (name: string, roles: string[]) =>
    createApiKey(db, { tenantId: 'acme', name, roles, createdBy: 'test' });
  const admin = await mint('admin', ['admin']);
  const damaged = await mint('damaged', ['viewer']);
  await execute('update api_keys set roles = $1 where id = $2', ['["view', damaged.info.id]);
  const as = (key: string) => ({ authorization: `Bearer ${key}` });

  const keys = await requestJson<{ items: { id: string; roles: string[] }[] }>(
    `${server.url}/v1/admin/keys`,
    {
      headers: as(admin.key),
    },
  );
  assert.equal(keys.status, 200, JSON.stringify(keys.body));
  assert.deepEqual(Object.fromEntries(keys.body.items.map((item) => [item.id, item.roles])), {
    [admin.info.id]: ['admin'],
    [damaged.info.id]: [],
  });
  const one = await requestJson<{ roles: string[] }>(`${server.url}/v1/admin/keys/${damaged.info.id}`, {
    headers: as(admin.key),
  });
  assert.equal(one.status, 200, JSON.stringify(one.body));
  assert.deepEqual(one.body.roles, []);

  const me = await requestJson<{ roles: string[]; permissions: string[] }>(`${server.url}/v1/me`, {
    headers: as(damaged.key),
  });
  assert.equal(me.status, 200, JSON.stringify(me.body));
  assert.deepEqual([me.body.roles, me.body.permissions], [[], []]);
  const refused = await requestJson<{ code: string }>(`${server.url}/v1/sessions`, {
    headers: as(damaged.key),
  });
  assert.equal(refused.status, 403, JSON.stringify(refused.body));
  assert.equal(refused.body.code, 'PERMISSION_DENIED');

  const revoked = await requestJson<{ revokedAt: string | null }>(
    `${server.url}/v1/admin/keys/${damaged.info.id}`,
    { method: 'DELETE', headers: as(admin.key) },
  );
  assert.ok([200, 204].includes(revoked.status), JSON.stringify(revoked.body));
  const after = await requestJson(`${server.url}/v1/me`, { headers: as(damaged.key) });
  assert.equal(after.status, 401);
}

for (const store of DAMAGEABLE_STORES) {
  describe(`an API key with damaged stored roles (${store.name})`, { timeout: 60_000 }, () => {
    const stack = useDamageableServer(store.kind, { auth: { mode: 'apikey' } });
    test('has no role: it is listed, answered by /v1/me and refused elsewhere', async () => {
      await checkDamagedKey(stack);
    });
  });
}
