// A custom role whose stored capabilities cannot be read (a hand edit of custom_roles.capabilities
// gone wrong) is listed with `capabilities: []`. Its JSON.parse ran in every read of the tenant's
// roles: GET /v1/roles and GET /v1/roles/{name} answered 500 for every name (built-in ones too), and
// the orchestrator, which lists the tenant's roles for each plan, could plan no session of the tenant.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DAMAGEABLE_STORES, type DamageableServer, useDamageableServer } from '../fixtures/damaged-rows.ts';
import { requestJson } from '../fixtures/server.ts';

interface Role {
  name: string;
  capabilities: string[];
  builtIn: boolean;
}

async function checkDamagedRole({ server, execute }: DamageableServer) {
  for (const [name, capabilities] of [
    ['archivist', ['filing']],
    ['curator', ['collections']],
  ] as const) {
    const created = await requestJson(`${server.url}/v1/roles`, {
      method: 'POST',
      body: {
        name,
        description: 'keeps the records',
        instructions: 'File every record you are given, by date.',
        capabilities,
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
  }
  await execute('update custom_roles set capabilities = $1 where name = $2', ['["fil', 'archivist']);

  const listed = await requestJson<{ items: Role[] }>(`${server.url}/v1/roles`);
  assert.equal(listed.status, 200, JSON.stringify(listed.body));
  assert.deepEqual(
    listed.body.items.filter((role) => !role.builtIn).map((role) => [role.name, role.capabilities]),
    [
      ['archivist', []],
      ['curator', ['collections']],
    ],
  );
  for (const [name, capabilities] of [
    ['archivist', []],
    ['curator', ['collections']],
  ] as const) {
    const one = await requestJson<Role>(`${server.url}/v1/roles/${name}`);
    assert.equal(one.status, 200, JSON.stringify(one.body));
    assert.deepEqual(one.body.capabilities, capabilities);
  }
  const builtIn = await requestJson<Role>(`${server.url}/v1/roles/qa`);
  assert.equal(builtIn.status, 200, JSON.stringify(builtIn.body));
}

for (const store of DAMAGEABLE_STORES) {
  describe(`a custom role with damaged stored capabilities (${store.name})`, { timeout: 60_000 }, () => {
    // Custom roles need a provider; nothing here calls it.
    const stack = useDamageableServer(store.kind, {
      providers: {
        local: { type: 'openai-compatible', baseURL: 'http://llm.invalid/v1', model: 'm', apiKey: 'k' },
      },
    });
    test("is listed without capabilities, and the tenant's other roles read as ever", async () => {
      await checkDamagedRole(stack);
    });
  });
}
