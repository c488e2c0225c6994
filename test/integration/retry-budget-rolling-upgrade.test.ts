// A rolling upgrade across migration 0023: a replica still running the code before it, serving after
// the migration ran, stores a session's settings without `requested_budget` (NULL). Retried on the
// new code, that session kept only its tenant's budget: its own limits were dropped (submitted
// maxTokens 7000, retried with {maxTokens: null, deadlineSeconds: 3600}). NULL is now read as a row of
// an older build (its effective budget is its own, as migration 0023 gives older rows), and the new
// code stores '{}' for a session that gave no budget. Real server, SQLite and PostgreSQL (PostgreSQL
// needs --test-global-setup=test/fixtures/postgres-global-setup.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';

interface Session {
  id: string;
  status: string;
  budget: { maxTokens: number | null; deadlineSeconds: number | null } | null;
}

/** A retry's limits: [maxTokens, deadlineSeconds]. */
const limits = (session: Session) => [
  session.budget?.maxTokens ?? null,
  session.budget?.deadlineSeconds ?? null,
];

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`a retry of a session an older replica stored: ${store}`, { timeout: 60_000 }, () => {
    test('keeps its own limits; a new session without a budget stores none and retries as before', async (t) => {
      const dataDir = mkdtempSync(join(tmpdir(), 'maos-retry-rolling-'));
      const database = store === 'postgres' ? await createTestDatabase() : undefined;
      let server: TestServer | undefined;
      t.after(async () => {
        await server?.close();
        await database?.drop();
        rmSync(dataDir, { recursive: true, force: true });
      });
      const start = async (tenantBudget: Record<string, number>) => {
        server = await startTestServer({
          dataDir,
          config: {
            ...(database ? { store: { url: database.url } } : {}),
            llm: { budgets: { default: tenantBudget } },
          },
        });
        return server;
      };
      const failedSession = async (budget?: Record<string, number>): Promise<string> => {
        const created = await requestJson<Session>(`${server!.url}/v1/sessions`, {
          method: 'POST',
          body: {
            objective: 'fails once',
            agents: [{ role: 'engineer', task: 'x', runner: 'fail' }],
            ...(budget ? { budget } : {}),
          },
        });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        assert.equal((await waitForSession<Session>(server!.url, created.body.id)).status, 'failed');
        return created.body.id;
      };
      const retry = async (id: string): Promise<Session> => {
        const answer = await requestJson<Session>(`${server!.url}/v1/sessions/${id}/retry`, {
          method: 'POST',
        });
        assert.equal(answer.status, 201, JSON.stringify(answer.body));
        return (await requestJson<Session>(`${server!.url}/v1/sessions/${answer.body.id}`)).body;
      };
      const requestedBudget = async (id: string) =>
        (
          await server!.app.database.db
            .selectFrom('session_settings')
            .select('requested_budget')
            .where('session_id', '=', id)
            .executeTakeFirstOrThrow()
        ).requested_budget;

      await start({ deadlineSeconds: 3600 });
      const older = await failedSession({ maxTokens: 7000 });
      const unbudgeted = await failedSession();
      assert.equal(await requestedBudget(unbudgeted), '{}', 'no budget of its own is stored as none');
      // As the code before 0023 writes it, on the migrated schema: the effective budget, no column.
      await server!.app.database.db
        .updateTable('session_settings')
        .set({ requested_budget: null })
        .where('session_id', '=', older)
        .execute();

      const kept = await retry(older);
      assert.deepEqual(limits(kept), [7000, 3600], 'its own maxTokens is kept');
      const fresh = await retry(unbudgeted);
      assert.deepEqual(limits(fresh), [null, 3600]);
      assert.equal(await requestedBudget(fresh.id), '{}');
      await server!.close();
      server = undefined;

      // The tenant's budget loosened: the session without a budget of its own gets the new one; the
      // older replica's session keeps what it ran with (it cannot tell its limits from its tenant's).
      await start({ deadlineSeconds: 7200 });
      const loosened = await retry(unbudgeted);
      assert.deepEqual(limits(loosened), [null, 7200]);
      const older2 = await retry(older);
      assert.deepEqual(limits(older2), [7000, 3600]);
    });
  });
}
