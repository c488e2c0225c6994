// The sessions list keeps itself current in real Chromium against the real server: a session
// created through the API appears and a status change shows without a reload, the rows already
// shown stay the same elements (focus kept), the status filter stays, a hidden tab asks nothing and
// refreshes as soon as it is shown, and never more than one list request is in flight. The page's
// clock is Playwright's fake one, moved forward by the poll intervals of web/console/poll.js.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Locator, Page } from 'playwright-core';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';

// The browser module itself (plain JS, no types): its intervals, not copies of them.
const pollModule: string = '../../web/console/poll.js';
const { POLL_ERROR_MAX_MS, POLL_MAX_MS, POLL_MIN_MS } = (await import(pollModule)) as {
  POLL_ERROR_MAX_MS: number;
  POLL_MAX_MS: number;
  POLL_MIN_MS: number;
};

describe('console: the sessions list refreshes itself', { timeout: 180_000 }, () => {
  const cleanups: Array<() => unknown> = [];
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;
  /** List requests now in flight, and the most there ever were at once. */
  let inFlight = 0;
  let maxInFlight = 0;
  const listRequests: string[] = [];

  before(async () => {
    // Workers off: a session stays where the test puts it.
    server = await startTestServer({ config: { workers: { concurrency: 0 } } });
    cleanups.push(() => server.close());
    const browser = await launchTestBrowser({ after: (fn: () => unknown) => cleanups.push(fn) });
    ({ page, problems } = await browser.openPage());
    const isList = (url: string) => new URL(url).pathname === '/v1/sessions';
    page.on('request', (request) => {
      if (!isList(request.url())) return;
      listRequests.push(request.url());
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
    });
    const done = (request: { url(): string }) => {
      if (isList(request.url())) inFlight -= 1;
    };
    page.on('requestfinished', done);
    page.on('requestfailed', done);
    await page.clock.install();
    await page.goto(`${server.url}/console/`);
    await page.getByText('No sessions.').waitFor();
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  async function createSession(objective: string): Promise<string> {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective, agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    return created.body.id;
  }

  const row = (objective: string) =>
    page
      .locator('#sessions-body tr')
      .filter({ has: page.getByRole('link', { name: objective, exact: true }) });

  async function setVisibility(state: 'visible' | 'hidden'): Promise<void> {
    await page.evaluate((value) => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => value });
      document.dispatchEvent(new Event('visibilitychange'));
    }, state);
  }

  test('a session created elsewhere appears; the rows shown stay, with the focus', async () => {
    await createSession('first from the API');
    await pollUntilVisible(row('first from the API'));

    // The user is on the first row's link when a second session arrives.
    await page.getByRole('link', { name: 'first from the API', exact: true }).focus();
    await page.evaluate(() => {
      (document.querySelector('#sessions-body tr') as HTMLElement).dataset.marked = 'yes';
    });
    await createSession('second from the API');
    await pollUntilVisible(row('second from the API'));
    assert.deepEqual(
      await page.locator('#sessions-body tr a').allTextContents(),
      ['second from the API', 'first from the API'],
      'newest first',
    );
    assert.equal(await row('first from the API').getAttribute('data-marked'), 'yes', 'the same row element');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'first from the API');
    await page.getByText('Page 1: 2 sessions.').waitFor();
  });

  test('a status change shows without a reload', async () => {
    const id = await createSession('to be cancelled');
    await pollUntilVisible(row('to be cancelled'));
    const cancelled = await requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
    assert.ok(cancelled.status < 300, JSON.stringify(cancelled.body));
    // The row's badge (its objective says "cancelled" already from the start).
    await pollUntilVisible(row('to be cancelled').getByTitle('cancelled', { exact: true }));
  });

  test('the status filter stays as the user set it', async () => {
    await page.getByLabel('Status').selectOption('cancelled');
    await page.getByText('Page 1: 1 session.').waitFor();
    await createSession('running, filtered out');
    const before = listRequests.length;
    await page.clock.fastForward(POLL_MAX_MS);
    await waitForRequestsAfter(before);
    assert.match(listRequests.at(-1) ?? '', /status=cancelled/);
    assert.equal(await page.getByLabel('Status').inputValue(), 'cancelled');
    assert.equal(await row('running, filtered out').count(), 0);
    await page.getByLabel('Status').selectOption('');
    await row('running, filtered out').waitFor();
  });

  test('a hidden tab asks nothing; shown again, it refreshes at once', async () => {
    await setVisibility('hidden');
    const before = listRequests.length;
    await createSession('made while hidden');
    await page.clock.fastForward(POLL_ERROR_MAX_MS);
    await page.clock.fastForward(POLL_ERROR_MAX_MS);
    // Give a wrongly planned request the time to be sent (real time: requests are real).
    await sleep(300);
    assert.equal(listRequests.length, before, 'no list request while hidden');
    await setVisibility('visible');
    await row('made while hidden').waitFor();
    assert.ok(listRequests.length > before);
  });

  test('never more than one list request in flight, and no page errors', () => {
    assert.ok(POLL_MIN_MS <= POLL_MAX_MS);
    assert.equal(maxInFlight, 1);
    assert.deepEqual(problems.messages, []);
  });

  // After the check of page errors above: the 429 below is logged by the browser.
  test('a 429 with Retry-After is honoured: nothing is asked before it', async () => {
    const retryAfterSeconds = 110;
    let refused = 0;
    const isList = (url: URL) => url.pathname === '/v1/sessions';
    await page.route(isList, async (route) => {
      if (refused > 0) return route.continue();
      refused += 1;
      await route.fulfill({
        status: 429,
        headers: { 'retry-after': String(retryAfterSeconds) },
        contentType: 'application/problem+json',
        body: JSON.stringify({ title: 'Too many requests', status: 429, code: 'RATE_LIMITED' }),
      });
    });
    const before = listRequests.length;
    await page.clock.fastForward(POLL_MAX_MS);
    await waitForRequestsAfter(before);
    assert.equal(refused, 1);
    await page.getByRole('alert').filter({ hasText: 'Too many requests' }).waitFor();
    // The refusal says when, from its Retry-After.
    await page
      .getByRole('alert')
      .filter({ hasText: `Try again in ${retryAfterSeconds} s.` })
      .waitFor();
    const afterRefusal = listRequests.length;
    // Past the doubled failure interval (at most 60 s here), short of the Retry-After.
    assert.ok(Math.min(POLL_MAX_MS * 2, POLL_ERROR_MAX_MS) < 90_000);
    await page.clock.fastForward(90_000);
    // Showing the tab again does not jump the wait either.
    await setVisibility('hidden');
    await setVisibility('visible');
    await sleep(300);
    assert.equal(listRequests.length, afterRefusal, 'nothing asked before the Retry-After');
    await page.clock.fastForward((retryAfterSeconds - 90 + 5) * 1000);
    await waitForRequestsAfter(afterRefusal);
    await page.getByRole('alert').waitFor({ state: 'detached' });
    await page.unroute(isList);
  });

  /**
   * Moves the page's clock past the longest quiet interval until `locator` shows (a few rounds at
   * most: a refresh still in flight when the clock jumps plans the next one from then on).
   */
  async function pollUntilVisible(locator: Locator): Promise<void> {
    for (let round = 1; ; round += 1) {
      await page.clock.fastForward(POLL_MAX_MS);
      try {
        await locator.waitFor({ timeout: 3_000 });
        return;
      } catch (error) {
        if (round === 5) throw error;
      }
    }
  }

  /** Waits (real time, bounded) until a list request after the `count`-th one has been sent and answered. */
  async function waitForRequestsAfter(count: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (listRequests.length <= count || inFlight > 0) {
      if (Date.now() > deadline) assert.fail('no list request after the clock moved');
      await sleep(50);
    }
  }
});
