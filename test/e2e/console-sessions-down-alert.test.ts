// The sessions list while the server cannot be reached, in real Chromium against the real server
// (its list requests refused at the connection by the page's router) and Playwright's fake clock:
// the background refresh fails again and again, and the error is announced once as an alert, not
// again with each failed refresh (every 10 s to 2 min); it stays shown, and goes once a refresh
// succeeds. A Refresh by hand that fails is announced again: the user asked.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Page } from 'playwright-core';
import { launchTestBrowser } from '../fixtures/browser.ts';
import { startTestServer, type TestServer } from '../fixtures/server.ts';

const pollModule: string = '../../web/console/poll.js';
const { POLL_ERROR_MAX_MS } = (await import(pollModule)) as { POLL_ERROR_MAX_MS: number };

const cleanups: Array<() => unknown> = [];

describe('console: the sessions list while the server is out of reach', { timeout: 120_000 }, () => {
  let server: TestServer;
  let page: Page;
  let listRequests = 0;

  before(async () => {
    server = await startTestServer();
    cleanups.push(() => server.close());
    const browser = await launchTestBrowser({ after: (fn: () => unknown) => cleanups.push(fn) });
    ({ page } = await browser.openPage());
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === '/v1/sessions') listRequests += 1;
    });
    await page.clock.install();
    await page.goto(`${server.url}/console/`);
    await page.getByText('No sessions.').waitFor();
    // Counts the alerts put into the page (each one is announced by a screen reader).
    await page.evaluate(() => {
      const seen = window as unknown as { alertsShown: number };
      seen.alertsShown = 0;
      new MutationObserver((records) => {
        for (const record of records) {
          for (const node of record.addedNodes) {
            if (node instanceof Element && node.matches('[role="alert"]')) seen.alertsShown += 1;
          }
        }
      }).observe(document.getElementById('main') as HTMLElement, { childList: true, subtree: true });
    });
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  const alertsShown = () => page.evaluate(() => (window as unknown as { alertsShown: number }).alertsShown);

  /** Moves the clock past the longest wait and waits (real time) for the list request it makes. */
  async function nextRefresh(): Promise<void> {
    const before = listRequests;
    await page.clock.fastForward(POLL_ERROR_MAX_MS);
    const deadline = Date.now() + 10_000;
    while (listRequests === before) {
      if (Date.now() > deadline) assert.fail('no list request after the clock moved');
      await sleep(50);
    }
    await sleep(200);
  }

  test('failing refreshes: one alert; Refresh by hand: announced again; back: gone', async () => {
    const isList = (url: URL) => url.pathname === '/v1/sessions';
    await page.route(isList, (route) => route.abort('connectionrefused'));
    const problem = page.locator('.problem', { hasText: 'The server cannot be reached' });

    await nextRefresh();
    await problem.waitFor();
    assert.equal(await alertsShown(), 1);
    await nextRefresh();
    await nextRefresh();
    assert.equal(await problem.count(), 1, 'the error stays shown');
    assert.equal(await alertsShown(), 1, 'announced once, not with each failed refresh');

    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.waitForFunction(() => (window as unknown as { alertsShown: number }).alertsShown === 2);

    await page.unroute(isList);
    await nextRefresh();
    await problem.waitFor({ state: 'detached' });
  });
});
