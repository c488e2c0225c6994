// A session's page reads the session again after each burst of events and after each action; in
// real Chromium against the real server (no workers: a session stays where the test puts it), a
// read answered late — after a newer read has been shown — must not put the older state back. The
// page's clock is Playwright's fake one: an event burst's read (150 ms after its first event) runs
// only when the test moves the clock.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { APIResponse, Page, Route } from 'playwright-core';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';

describe('console: the reads of a session page', { timeout: 120_000 }, () => {
  const cleanups: Array<() => unknown> = [];
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;

  before(async () => {
    server = await startTestServer({ config: { workers: { concurrency: 0 } } });
    cleanups.push(() => server.close());
    const browser = await launchTestBrowser({ after: (fn: () => unknown) => cleanups.push(fn) });
    ({ page, problems } = await browser.openPage());
    // Marks the page once it has read the body of the answer the test held (x-held): the rest of
    // handling a read of the session runs in the same task, so it has been handled by then.
    await page.addInitScript(() => {
      const text = Response.prototype.text;
      Response.prototype.text = async function (this: Response) {
        const body = await text.call(this);
        if (this.headers.get('x-held') === 'yes') document.documentElement.dataset.heldRead = 'yes';
        return body;
      };
    });
    await page.clock.install();
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  const status = (value: string) => page.locator(`#session-facts .badge[title="${value}"]`);

  test('a read of the session answered after a newer one does not bring back the older state', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Answered out of order', agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
    });
    assert.equal(created.status, 201);
    const id = created.body.id;
    await page.goto(`${server.url}/console/#/sessions/${id}`);
    await status('running').waitFor();
    await page.locator('#stream-state', { hasText: 'live' }).waitFor();
    // The read after the events the stream replayed on opening.
    await page.clock.runFor(1_000);

    // The next read of the session is held (answered by the server at once, passed on later).
    const isSessionRead = (url: URL) => url.pathname === `/v1/sessions/${id}`;
    let held: { route: Route; response: APIResponse } | null = null;
    const holding = new Promise<void>((resolve) => {
      page.route(isSessionRead, async (route) => {
        if (held !== null || route.request().method() !== 'GET') return route.continue();
        held = { route, response: await route.fetch() };
        resolve();
      });
    });
    // A steering message (refused: this server has no orchestrator to read it) is followed by a
    // read of the session, still running.
    await page.getByLabel('Message to the orchestrator').fill('read me');
    await page.getByRole('button', { name: 'Send message' }).click();
    await holding;
    const stale = held as unknown as { route: Route; response: APIResponse };

    // Cancelled meanwhile: once its events are in, the page's read after them shows it.
    const cancelled = await requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
    await page.locator('#stream-state', { hasText: 'ended' }).waitFor();
    await page.clock.runFor(1_000);
    await status('cancelled').waitFor();

    // The held read, of the session still running, arrives last, and the page reads it.
    await stale.route.fulfill({
      response: stale.response,
      headers: { ...stale.response.headers(), 'x-held': 'yes' },
    });
    await page.locator('html[data-held-read="yes"]').waitFor({ state: 'attached' });
    await page.unroute(isSessionRead);

    assert.equal(await page.locator('#session-facts .badge').getAttribute('title'), 'cancelled');
    assert.equal(await page.getByRole('button', { name: 'Cancel session' }).isDisabled(), true);
    assert.equal(await page.getByRole('button', { name: 'Delete session' }).isVisible(), true);
    // The browser logs the refused message's 409; nothing else may appear.
    assert.deepEqual(
      problems.messages.filter((line) => !/status of 409 \(Conflict\)/.test(line)),
      [],
    );
  });

  test('after the event stream drops and resumes, the page reads the session again', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Read again on resuming', agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
    });
    assert.equal(created.status, 201);
    const id = created.body.id;
    await page.goto(`${server.url}/console/#/sessions/${id}`);
    await status('running').waitFor();
    await page.locator('#stream-state', { hasText: 'live' }).waitFor();
    await page.clock.runFor(1_000);

    // A read of the session fails (the server out of reach for it, as while it restarts).
    const isSessionRead = (url: URL) => url.pathname === `/v1/sessions/${id}`;
    await page.route(isSessionRead, (route) =>
      route.request().method() === 'GET' ? route.abort('connectionfailed') : route.continue(),
    );
    await page.getByLabel('Message to the orchestrator').fill('read me');
    await page.getByRole('button', { name: 'Send message' }).click();
    const failedRead = page.getByRole('alert').filter({ hasText: 'Loading the session' });
    await failedRead.waitFor();
    await page.unroute(isSessionRead);

    // The stream drops (every connection cut) and resumes after the last event shown; no event
    // happened meanwhile, so none brings a read: resuming does.
    server.app.http.server.closeAllConnections();
    await page.locator('#stream-state', { hasText: 'reconnecting' }).waitFor();
    await page.clock.runFor(1_000);
    await page.locator('#stream-state', { hasText: 'live' }).waitFor();
    await page.clock.runFor(1_000);
    await failedRead.waitFor({ state: 'detached', timeout: 5_000 });
    await status('running').waitFor();

    await requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
    await page.locator('#stream-state', { hasText: 'ended' }).waitFor();
  });

  test('plan versions that could not be read are read again with the session', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Plans read again', agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
    });
    assert.equal(created.status, 201);
    const id = created.body.id;
    // The first read of the plan versions fails (the server out of reach for it).
    const isPlansRead = (url: URL) => url.pathname === `/v1/sessions/${id}/plans`;
    const { promise: refused, resolve: plansRefused } = Promise.withResolvers<void>();
    await page.route(
      isPlansRead,
      async (route) => {
        await route.abort('connectionfailed');
        plansRefused();
      },
      { times: 1 },
    );
    await page.goto(`${server.url}/console/#/sessions/${id}`);
    await status('running').waitFor();
    await refused;
    // Its problem is shown until a later read of the session reads them again, which an event of
    // the running session may already have done: not waited for, so as not to miss it.
    const failedRead = page.getByRole('alert').filter({ hasText: 'Loading the plan versions' });

    // The next read of the session (here after a refused steering message) reads them again.
    await page.getByLabel('Message to the orchestrator').fill('read me');
    await page.getByRole('button', { name: 'Send message' }).click();
    await page.locator('#plan-versions details[data-version="1"]').waitFor({ timeout: 5_000 });
    assert.equal(await failedRead.count(), 0);
    await requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
  });
});
