// Concurrent creates of custom roles keep the per-tenant cap (MAX_CUSTOM_ROLES_PER_TENANT): the
// count and the insert are one step, so creates that arrive together with one place left add one
// role and refuse the others with RESOURCE_LIMIT_EXCEEDED. SQLite (one process) and PostgreSQL
// (two replicas on one database; the interleaving forced with a paused query, no sleeps).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import type { LlmDb } from '../../src/agents/providers/llm-tables.ts';
import { createRoleService, MAX_CUSTOM_ROLES_PER_TENANT } from '../../src/agents/roles/role-service.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { pauseAfterQuery, waitForLockWaiter } from '../fixtures/pause-query.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';

function role(n: number) {
  return {
    name: `checker_${n}`,
    description: 'Checks work against the house rules.',
    instructions: 'You check the work against the house rules and list what is missing.',
  };
}

for (const backend of STORE_BACKENDS) {
  describe(`custom role cap under concurrent creates (${backend.name})`, { timeout: 60_000 }, () => {
    test('creates racing for the last place add one role; the others are RESOURCE_LIMIT_EXCEEDED', async () => {
      const replicas = backend.name === 'postgres' ? 2 : 1;
      const { handles, dispose } = await backend.open(replicas);
      try {
        const services = handles.map((handle) => createRoleService(handle.db as unknown as LlmDb));
        const first = services[0]!;
        for (let n = 1; n < MAX_CUSTOM_ROLES_PER_TENANT; n++) await first.createRole('t1', 'u', role(n));
        // Another tenant's roles do not count.
        await first.createRole('t2', 'u', role(1));
        const racing = Array.from({ length: 6 }, (_, i) =>
          services[i % services.length]!.createRole('t1', 'u', role(100 + i)),
        );
        const results = await Promise.allSettled(racing);
        const created = results.filter((result) => result.status === 'fulfilled');
        const refused = results.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []));
        assert.equal(created.length, 1, 'one create takes the last place');
        for (const error of refused) {
          assert.ok(error instanceof AppError, String(error));
          assert.equal(error.code, 'RESOURCE_LIMIT_EXCEEDED');
        }
        const custom = (await first.listRoles('t1')).filter((listed) => !listed.builtIn);
        assert.equal(custom.length, MAX_CUSTOM_ROLES_PER_TENANT);
      } finally {
        await dispose();
      }
    });

    if (backend.name !== 'postgres') return;

    test('a create on another replica waits for one that has counted, then is refused', async () => {
      const { handles, dispose } = await backend.open(2);
      try {
        const [a, b] = handles.map((handle) => handle.db as unknown as Kysely<never>) as [
          Kysely<never>,
          Kysely<never>,
        ];
        const services = [a, b].map((db) => createRoleService(db as unknown as LlmDb));
        for (let n = 1; n < MAX_CUSTOM_ROLES_PER_TENANT; n++)
          await services[0]!.createRole('t1', 'u', role(n));
        // Replica A counts 49 roles and is held there; replica B creates meanwhile.
        const pause = pauseAfterQuery((node) => node.includes('custom_roles') && node.includes('"count"'));
        const paused = createRoleService(a.withPlugin(pause.plugin) as unknown as LlmDb);
        const first = paused.createRole('t1', 'u', role(100)).then(
          () => 'created',
          (error: unknown) => error,
        );
        await pause.reached;
        const second = services[1]!.createRole('t1', 'u', role(101)).then(
          () => 'created',
          (error: unknown) => error,
        );
        // B waits for A's turn (a lock wait), or, without one, goes ahead on the count of 49.
        await Promise.race([second, waitForLockWaiter(a)]);
        pause.release();
        const outcomes = await Promise.all([first, second]);
        assert.equal(outcomes[0], 'created');
        const refused = outcomes[1];
        assert.ok(refused instanceof AppError, `the second create was not refused: ${String(refused)}`);
        assert.equal(refused.code, 'RESOURCE_LIMIT_EXCEEDED');
        const custom = (await services[0]!.listRoles('t1')).filter((listed) => !listed.builtIn);
        assert.equal(custom.length, MAX_CUSTOM_ROLES_PER_TENANT);
      } finally {
        await dispose();
      }
    });
  });
}
