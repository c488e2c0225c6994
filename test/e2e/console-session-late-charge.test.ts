// A run that lost its lease (another replica took its task over) but kept going charges what it spent
// to its task when it ends, with a `task.usage` event naming the task. The session page reads, after
// its first read, only the tasks events name: in real Chromium against the real server, its task row
// shows the charge (as the session's usage and Agents table do), as a page opened afresh shows it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { EngineInternals } from '../../src/engine/index.ts';
import { expireTaskLease } from '../../src/engine/lease-expiry.ts';
import { claimReadyTasks, findExpiredLeases } from '../../src/store/task-store.ts';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { openSession } from '../fixtures/console-session-page.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import type { ScriptedLlmServer } from '../fixtures/llm-server.ts';
import { requestJson, type TestServer, waitForSession } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };

/** What the run that loses its lease spends (1,545 tokens). */
const LATE_USAGE = { inputTokens: 1200, outputTokens: 345 };

interface TaskDto {
  id: string;
  name: string;
  status: string;
  attempts: number;
  usage: { inputTokens: number; outputTokens: number };
}

/** The usage cell of task `name`'s row: the task's usage, then that of each model that served it. */
function usageCell(page: Page, name: string) {
  return page.locator(`#tasks-table tr[data-task="${name}"] td.usage`);
}

describe('console: a run that lost its lease charges its task late', { timeout: 240_000 }, () => {
  let server: TestServer;
  let llm: ScriptedLlmServer;
  let page: Page;
  let problems: PageProblems;
  let openGate: () => void = () => {};

  before(async () => {
    // Why a lease of 10 minutes: the run is fenced by the takeover below, never by a lease renewal
    // of its own (which would stop its model call before it answered).
    ({ server, llm } = await startLlmAppStack(t, {
      config: { tasks: { leaseSeconds: 600, maxAttempts: 3 } },
    }));
    const gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    cleanups.push(() => openGate());
    // The agent's model call answers once the test has given its task to another replica.
    llm.setHandler(async () => {
      await gate;
      return { text: 'A late answer', usage: LATE_USAGE };
    });
    ({ page, problems } = await (await launchTestBrowser(t)).openPage());
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('the task row shows what the run charged when it ended', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'A late charge', agents: [{ name: 'only', role: 'engineer', task: 'Answer' }] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    await waitFor(() => llm.requests.length === 1, 20_000, "the agent's model call");

    // A stall: the run's lease runs out, the reaper gives the task back and another replica claims
    // it (attempt 2), in one transaction. The run goes on: its model call is under way.
    const engine = server.app.engine as EngineInternals;
    await engine.queue.run(async (trx) => {
      await trx
        .updateTable('tasks')
        .set({ lease_expires_at: Date.now() - 1 })
        .where('session_id', '=', id)
        .execute();
      const [row] = await findExpiredLeases(trx, Date.now(), 10);
      assert.ok(row);
      assert.equal((await expireTaskLease(trx, row, Date.now())).retried, true);
      const claimed = await claimReadyTasks(trx, server.app.database.dialect, {
        owner: 'other-replica',
        limit: 10,
        leaseMs: 600_000,
        now: Date.now(),
      });
      assert.equal(claimed.length, 1);
    });
    // The page opened now: the task is the other replica's, nothing charged yet, and the events
    // so far are in its first read (from now on it reads only the tasks new events name).
    await openSession(page, server.url, id);
    await page.locator('#stream-state', { hasText: 'live' }).waitFor();
    await page.locator('#tasks-table tr[data-task="only"] .badge[title="leased"]').waitFor();
    assert.match((await usageCell(page, 'only').textContent()) ?? '', /^0 tokens/);

    // The run answers: its finish is rejected (the task is another's), what it spent is charged.
    openGate();
    const task = await waitFor(
      async () => {
        const { body } = await requestJson<{ tasks: TaskDto[] }>(`${server.url}/v1/sessions/${id}`);
        const only = body.tasks[0]!;
        return only.usage.outputTokens === LATE_USAGE.outputTokens && only;
      },
      20_000,
      'the late charge',
    );
    assert.equal(task.attempts, 2);
    assert.equal(task.status, 'leased');
    const tokens = `${(task.usage.inputTokens + task.usage.outputTokens).toLocaleString('en-US')} tokens`;
    assert.equal(tokens, '1,545 tokens');
    // The event names the task: the page reads it, and its row shows the charge, as the session's
    // usage and its Agents table (read without its tasks) do.
    await usageCell(page, 'only').filter({ hasText: tokens }).waitFor({ timeout: 20_000 });
    await page.locator('#agents-table tr[data-agent="only"]', { hasText: tokens }).waitFor();
    await page.locator('#session-facts', { hasText: tokens }).waitFor();
    await page.locator('#event-log', { hasText: `only: attempt 1 charged ${tokens}` }).waitFor();
    assert.equal(
      await page.locator('#tasks-table tr[data-task="only"] .badge').getAttribute('title'),
      'leased',
    );

    // What the page shows is what a page opened now shows.
    const live = await usageCell(page, 'only').innerHTML();
    await page.reload();
    await usageCell(page, 'only').filter({ hasText: tokens }).waitFor();
    assert.equal(await usageCell(page, 'only').innerHTML(), live);

    const cancelled = await requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
    await waitForSession(server.url, id);
    assert.deepEqual(problems.messages, []);
  });
});
