// A session page's read after a burst of events also reads the plan versions when they are not
// shown yet (a version came, or their last read failed). Only one such read runs at a time, so a
// plan-versions read that hangs while the event stream stays up (a stalled proxy) held every later
// read: the page stayed on an old state (a session running that had completed) with no word of it.
// In real Chromium against the real server (runner tasks that end when the test lets them, the
// page's clock Playwright's fake one), that read is ended after 30 s as a read of the session is,
// says so in the plan panel, and the read it held follows.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page, Route } from 'playwright-core';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { openLiveSession } from '../fixtures/console-session-page.ts';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

describe('console: a plan-versions read that hangs holds no later read', { timeout: 120_000 }, () => {
  const cleanups: Array<() => unknown> = [];
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;
  let gate: string;

  before(async () => {
    gate = mkdtempSync(join(tmpdir(), 'maos-console-gate-'));
    cleanups.push(() => rmSync(gate, { recursive: true, force: true }));
    // A task of runner `gated` ends once the file named by its task text exists.
    const waitForFile = `while [ ! -e "${gate}/$MAOS_TASK" ]; do sleep 0.05; done`;
    server = await startTestServer({
      config: { workers: { concurrency: 2 }, runners: { gated: { command: ['sh', '-c', waitForFile] } } },
    });
    cleanups.push(() => server.close());
    const browser = await launchTestBrowser({ after: (fn: () => unknown) => cleanups.push(fn) });
    ({ page, problems } = await browser.openPage());
    await page.clock.install();
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('ended after 30 s and said in the plan panel; the session read it held follows', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'Plan versions behind a stalled proxy',
        agents: ['a', 'b'].map((name) => ({ name, role: 'qa', task: name, runner: 'gated' })),
      },
    });
    assert.equal(created.status, 201);
    const id = created.body.id;
    await waitForSession(server.url, id, (session: { status: string; tasks: Array<{ status: string }> }) =>
      session.tasks.every((task) => task.status === 'running'),
    );
    // The first read of the plan versions fails (read again with the next read of the session); the
    // second, that next read's, hangs; the others pass.
    const plansRead: Route[] = [];
    await page.route(
      (url) => url.pathname === `/v1/sessions/${id}/plans`,
      async (route) => {
        plansRead.push(route);
        if (plansRead.length === 1) await route.abort();
        else if (plansRead.length > 2) await route.continue();
      },
    );
    await openLiveSession(page, server.url, id);
    await page.getByRole('alert').filter({ hasText: 'Loading the plan versions' }).waitFor();

    // Task a ends: its burst's read shows it, then reads the plan versions, which hang.
    writeFileSync(join(gate, 'a'), '');
    await page.clock.runFor(1_000);
    await page.locator('#tasks-table tr[data-task="a"] .badge[title="succeeded"]').waitFor();
    await waitFor(() => plansRead.length === 2, 10_000, 'the plan versions read by the burst');

    // Task b ends and the session with it, while that read hangs.
    writeFileSync(join(gate, 'b'), '');
    await page.locator('#stream-state', { hasText: 'ended' }).waitFor();
    await page.clock.runFor(1_000);
    assert.equal(await page.locator('#session-facts .badge[title="running"]').count(), 1);

    // Half a minute on, it is ended and says so, and the read it held shows the session completed
    // (and reads the plan versions again, which shows them).
    await page.clock.runFor(30_000);
    await page
      .getByRole('alert')
      .filter({ hasText: 'Loading the plan versions: The server did not answer' })
      .waitFor({ timeout: 10_000 });
    await page.clock.runFor(1_000);
    await page.locator('#session-facts .badge[title="completed"]').waitFor({ timeout: 10_000 });
    await page.locator('#plan-versions details[data-version="1"]').waitFor({ timeout: 10_000 });
    // The only problem the page logs is the plan-versions read the test failed on purpose.
    assert.deepEqual(problems.messages, ['error: Failed to load resource: net::ERR_FAILED']);
    await plansRead[1]?.abort().catch(() => {});
    await page.unrouteAll({ behavior: 'ignoreErrors' });
  });
});
