// POST /v1/sessions/:id/retry after the operator set, tightened or loosened the tenant's budget (a
// restart with `llm.budgets`): the retry is capped by the tenant's budget as it is now, with or
// without a budget of its own, as a submit is; a session submitted before the change carries neither
// a looser budget, or none, nor the tenant's stricter cap of then into its retry.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  requestJson,
  startTestServer,
  TEST_RUNNERS,
  type TestServer,
  waitForSession,
} from '../fixtures/server.ts';

interface Session {
  id: string;
  status: string;
  budget: { maxTokens: number | null; deadlineSeconds: number | null } | null;
}

describe('a retry under a tenant budget set since its original', { timeout: 60_000 }, () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-retry-budget-'));
  let server: TestServer | undefined;
  after(async () => {
    await server?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

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
    const failed = await waitForSession<Session>(server!.url, created.body.id);
    assert.equal(failed.status, 'failed');
    return created.body.id;
  };
  const retry = async (id: string, body?: unknown): Promise<Session> => {
    const answer = await requestJson<Session>(`${server!.url}/v1/sessions/${id}/retry`, {
      method: 'POST',
      ...(body === undefined ? {} : { body }),
    });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    return (await requestJson<Session>(`${server!.url}/v1/sessions/${answer.body.id}`)).body;
  };

  test('the tenant budget of now caps the retry, whatever the original had', async () => {
    const runners = { runners: TEST_RUNNERS };
    server = await startTestServer({ dataDir, config: runners });
    const unbudgeted = await failedSession();
    const looser = await failedSession({ maxTokens: 50_000, deadlineSeconds: 60 });
    await server.close();
    server = undefined;

    server = await startTestServer({
      dataDir,
      config: { ...runners, llm: { budgets: { default: { maxTokens: 1000 } } } },
    });
    const fresh = await retry(unbudgeted);
    assert.equal(fresh.budget?.maxTokens, 1000, 'a session without a budget gets the tenant’s');
    const tightened = await retry(looser);
    assert.equal(tightened.budget?.maxTokens, 1000, 'the original’s looser limit is capped');
    assert.equal(tightened.budget?.deadlineSeconds, 60, 'its other limits stay');
    const own = await retry(looser, { budget: { maxTokens: 400 } });
    assert.equal(own.budget?.maxTokens, 400, 'a tighter budget of the retry’s own applies');
  });

  test('a tenant budget loosened since the original applies to its retry; its own limits stay', async () => {
    await server?.close();
    const runners = { runners: TEST_RUNNERS };
    server = await startTestServer({
      dataDir,
      config: { ...runners, llm: { budgets: { default: { maxTokens: 1000 } } } },
    });
    const unbudgeted = await failedSession();
    const ownLooser = await failedSession({ maxTokens: 5000 });
    const ownStricter = await failedSession({ maxTokens: 500, deadlineSeconds: 60 });
    await server.close();
    server = undefined;

    server = await startTestServer({
      dataDir,
      config: { ...runners, llm: { budgets: { default: { maxTokens: 50_000 } } } },
    });
    const fresh = await retry(unbudgeted);
    assert.equal(fresh.budget?.maxTokens, 50_000, 'the tenant’s budget of now, not the stricter one of then');
    const own = await retry(ownLooser);
    assert.equal(own.budget?.maxTokens, 5000, 'the original’s own limit, capped then, applies as asked');
    const stricter = await retry(ownStricter);
    assert.deepEqual([stricter.budget?.maxTokens, stricter.budget?.deadlineSeconds], [500, 60]);
    assert.equal((await waitForSession<Session>(server.url, own.id)).status, 'failed');
    const again = await retry(own.id);
    assert.equal(again.budget?.maxTokens, 5000, 'a retry of the retry keeps the own budget');
  });
});
