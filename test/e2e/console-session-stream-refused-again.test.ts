// A session's event stream refused with 429 again and again (the caller's streams at
// http.maxSseStreamsPerPrincipal while another tab holds the only one): in real Chromium against the
// real server, with the page's clock moved by the test, the refusal is announced as an alert once,
// not again with each refused try; it stays shown until the stream opens.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Page } from 'playwright-core';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';

// The server's own value, not a copy of it.
const { STREAM_CAP_RETRY_AFTER_SECONDS } = await import('../../src/http/routes/session-events.ts');

describe('console: a session stream refused again and again', { timeout: 120_000 }, () => {
  const cleanups: Array<() => unknown> = [];
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;
  /** The answers' statuses of the page's stream requests, in order. */
  const streamAnswers: number[] = [];

  before(async () => {
    // Workers off: the session stays running, its stream open. One stream per caller.
    server = await startTestServer({
      config: { workers: { concurrency: 0 }, http: { maxSseStreamsPerPrincipal: 1 } },
    });
    cleanups.push(() => server.close());
    const browser = await launchTestBrowser({ after: (fn: () => unknown) => cleanups.push(fn) });
    ({ page, problems } = await browser.openPage());
    page.on('response', (response) => {
      if (new URL(response.url()).pathname.endsWith('/events')) streamAnswers.push(response.status());
    });
    await page.clock.install();
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** Waits (real time, bounded) until the page has had `count` stream answers. */
  async function answers(count: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (streamAnswers.length < count) {
      if (Date.now() > deadline) assert.fail(`${streamAnswers.length} stream answers, not ${count}`);
      await sleep(50);
    }
    await sleep(200);
  }

  test('three refusals: one alert, shown until the stream opens', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Refused again', agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
    });
    assert.equal(created.status, 201);
    const id = created.body.id;
    const other = new AbortController();
    const taken = await fetch(`${server.url}/v1/sessions/${id}/events`, {
      headers: { accept: 'text/event-stream' },
      signal: other.signal,
    });
    assert.equal(taken.status, 200);

    await page.goto(`${server.url}/console/#/sessions/${id}`);
    await page.locator('#stream-problem [role=alert]').waitFor();
    // Counts the alerts put into the page from now on (each one is announced by a screen reader).
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
    for (const count of [2, 3]) {
      await page.clock.runFor(STREAM_CAP_RETRY_AFTER_SECONDS * 1000 + 1_000);
      await answers(count);
    }
    assert.deepEqual(streamAnswers, [429, 429, 429]);
    const shown = page.locator('#stream-problem .problem');
    assert.match((await shown.textContent()) ?? '', /RESOURCE_LIMIT_EXCEEDED/);
    assert.equal(
      await page.evaluate(() => (window as unknown as { alertsShown: number }).alertsShown),
      0,
      'the refusals after the first are not announced again',
    );

    other.abort();
    await page.clock.runFor(STREAM_CAP_RETRY_AFTER_SECONDS * 1000 + 1_000);
    await page.locator('#stream-state', { hasText: 'live' }).waitFor();
    await shown.waitFor({ state: 'detached' });
    await requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
    await page.locator('#stream-state', { hasText: 'ended' }).waitFor();
    assert.deepEqual(
      problems.messages.filter((line) => !/status of 429 \(Too Many Requests\)/.test(line)),
      [],
    );
  });
});
