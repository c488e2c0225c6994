// A custom role deleted while a session naming it is submitted. The submit checks the roles before
// it queues the insert; the insert's transaction checks them again (and on PostgreSQL locks them
// until its commit), so whichever order the two take: a delete that landed before the insert gets
// the submit refused with INVALID_ROLE and nothing stored; a delete that comes while the insert is
// under way waits for it and is refused with INVALID_STATE naming the session. Interleavings forced
// with a paused query, no sleeps. SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LlmDb } from '../../src/agents/providers/llm-tables.ts';
import { createRoleService, type RoleService } from '../../src/agents/roles/role-service.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { ACTOR, createHarness, type Harness, type HarnessOptions } from '../fixtures/engine-harness.ts';
import { pauseAfterQuery, waitForLockWaiter } from '../fixtures/pause-query.ts';
import { POET_ROLE } from '../fixtures/poet-role.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';

const POET = { ...POET_ROLE, capabilities: [] };

const SUBMISSION = { objective: 'o', agents: [{ name: 'verse', role: 'poet', task: 'A verse' }] };

/** The error a promise rejects with, or undefined when it resolves. */
function settled<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  return promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

/** A query on the custom roles table (the insert's check, the delete's row lock). */
const onCustomRoles = (node: string) => node.includes('custom_roles');

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`submitting a session while its custom role is deleted (${store})`, { timeout: 60_000 }, () => {
    async function start(
      t: { after(fn: () => Promise<void>): void },
      options: Omit<HarnessOptions, 'storeUrl' | 'findRole'> & {
        findRole?: (roles: RoleService) => HarnessOptions['findRole'];
      },
    ): Promise<{ h: Harness; roles: RoleService }> {
      let storeUrl: string | undefined;
      if (store === 'postgres') {
        const database = await createTestDatabase();
        t.after(() => database.drop());
        storeUrl = database.url;
      }
      let roles: RoleService | undefined;
      const h = await createHarness({
        ...options,
        start: false,
        concurrency: 0,
        llm: { kind: 'llm', run: async () => ({ output: 'x' }) },
        findRole: (tenantId, name) => {
          const service = roles as RoleService;
          return (options.findRole?.(service) ?? service.findRole)(tenantId, name);
        },
        ...(storeUrl ? { storeUrl } : {}),
      });
      t.after(() => h.close());
      roles = createRoleService(h.handle.db as unknown as LlmDb);
      await roles.createRole(ACTOR.tenantId, 'test', POET);
      return { h, roles };
    }

    async function countSessions(h: Harness): Promise<number> {
      const row = await h.handle.db
        .selectFrom('sessions')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    }

    test('a delete between the submit’s check and its insert: INVALID_ROLE, nothing stored', async (t) => {
      let deleted = false;
      const { h } = await start(t, {
        // The submit's check finds the role; the delete lands right after it, before the insert.
        findRole: (roles) => async (tenantId, name) => {
          const role = await roles.findRole(tenantId, name);
          if (role && !deleted) {
            deleted = true;
            await roles.deleteRole(tenantId, name);
          }
          return role;
        },
      });
      const outcome = await settled(h.engine.service.createSession(ACTOR, SUBMISSION));
      assert.ok(deleted, 'the delete went through between the check and the insert');
      assert.ok(
        outcome.error instanceof AppError,
        `the session was stored: ${JSON.stringify(outcome.value)}`,
      );
      assert.equal(outcome.error.code, 'INVALID_ROLE');
      assert.match(
        outcome.error.message,
        /^Unknown role 'poet' \(task verse\): it was deleted while the session was being submitted/,
      );
      assert.equal(await countSessions(h), 0, 'no session with a task of the deleted role');
    });

    test('a delete while the insert is under way waits for it and is refused naming the session', async (t) => {
      const pause = pauseAfterQuery(onCustomRoles);
      const { h, roles } = await start(t, { engineDb: (db) => db.withPlugin(pause.plugin) });
      const submitting = settled(h.engine.service.createSession(ACTOR, SUBMISSION));
      // The insert's transaction has checked the role and holds it; it has not committed.
      await Promise.race([
        pause.reached,
        submitting.then(() => assert.fail('the insert did not check the role in its transaction')),
      ]);
      const deleting = settled(roles.deleteRole(ACTOR.tenantId, 'poet'));
      // PostgreSQL: the delete is seen waiting for the role's row. SQLite: it waits for the one
      // connection, which the insert's transaction holds, so it cannot finish before the release.
      const blocked =
        store === 'postgres'
          ? waitForLockWaiter(h.handle.db)
          : new Promise<void>((resolve) => setImmediate(resolve));
      const first = await Promise.race([
        deleting.then(() => 'the delete finished'),
        blocked.then(() => 'the delete waits'),
      ]);
      pause.release();
      assert.equal(first, 'the delete waits');
      const stored = await submitting;
      assert.ok(stored.value, `the submit failed: ${String(stored.error)}`);
      const sessionId = stored.value.session.id;
      const refused = await deleting;
      assert.ok(refused.error instanceof AppError, 'the role was deleted under the new session');
      assert.equal(refused.error.code, 'INVALID_STATE');
      assert.match(refused.error.message, new RegExp(`running session\\(s\\) ${sessionId}`));
      assert.ok(await roles.findRole(ACTOR.tenantId, 'poet'), 'the role is still there');
    });

    if (store === 'postgres') {
      test('a submit while a delete is under way waits for it and is refused with INVALID_ROLE', async (t) => {
        const { h } = await start(t, {});
        const pause = pauseAfterQuery(onCustomRoles);
        // A second service (another replica's) whose delete holds the role's row, not committed.
        const deleter = createRoleService(h.handle.db.withPlugin(pause.plugin) as unknown as LlmDb);
        const deleting = settled(deleter.deleteRole(ACTOR.tenantId, 'poet'));
        await Promise.race([
          pause.reached,
          deleting.then(() => assert.fail('the delete did not lock the role before deleting it')),
        ]);
        // The submit's own check reads the committed role; its insert must wait for the delete.
        const submitting = settled(h.engine.service.createSession(ACTOR, SUBMISSION));
        const first = await Promise.race([
          submitting.then(() => 'the submit finished'),
          waitForLockWaiter(h.handle.db).then(() => 'the submit waits'),
        ]);
        pause.release();
        assert.equal(first, 'the submit waits');
        assert.equal((await deleting).error, undefined);
        const outcome = await submitting;
        assert.ok(outcome.error instanceof AppError, 'the session was stored with a deleted role');
        assert.equal(outcome.error.code, 'INVALID_ROLE');
        assert.equal(await countSessions(h), 0);
      });
    }
  });
}
