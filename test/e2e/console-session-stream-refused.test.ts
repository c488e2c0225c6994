// A session's event stream refused with 429 and a Retry-After (the caller's open streams at
// http.maxSseStreamsPerPrincipal, e.g. many session tabs): in real Chromium against the real server,
// the page says why beside the stream's state, asks again only after the Retry-After, and once the
// stream opens the message goes. The page's clock is Playwright's fake one, moved by the test.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';

// The server's own value, not a copy of it.
const { STREAM_CAP_RETRY_AFTER_SECONDS } = await import('../../src/http/routes/session-events.ts');

describe('console: a session stream refused with a Retry-After', { timeout: 120_000 }, () => {
  const cleanups: Array<() => unknown> = [];
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;
  /** The stream requests of the page, in order, with their answers' status (0: not answered yet). */
  const streamRequests: number[] = [];

  before(async () => {
    // Workers off: the session stays running, its stream open. One stream per caller.
    server = await startTestServer({
      config: { workers: { concurrency: 0 }, http: { maxSseStreamsPerPrincipal: 1 } },
    });
    cleanups.push(() => server.close());
    const browser = await launchTestBrowser({ after: (fn: () => unknown) => cleanups.push(fn) });
    ({ page, problems } = await browser.openPage());
    page.on('request', (request) => {
      if (new URL(request.url()).pathname.endsWith('/events')) streamRequests.push(0);
    });
    page.on('response', (response) => {
      if (!new URL(response.url()).pathname.endsWith('/events')) return;
      streamRequests[streamRequests.lastIndexOf(0)] = response.status();
    });
    await page.clock.install();
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('the refusal is shown, the Retry-After waited for, and the message goes once the stream opens', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Too many streams', agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
    });
    assert.equal(created.status, 201);
    const id = created.body.id;
    // Another stream of the same caller (another tab) takes the only one allowed.
    const other = new AbortController();
    const taken = await fetch(`${server.url}/v1/sessions/${id}/events`, {
      headers: { accept: 'text/event-stream' },
      signal: other.signal,
    });
    assert.equal(taken.status, 200);

    await page.goto(`${server.url}/console/#/sessions/${id}`);
    const refusal = page.locator('#stream-problem [role=alert]');
    await refusal.waitFor();
    const text = (await refusal.textContent()) ?? '';
    assert.match(text, /Following the events/);
    assert.match(text, /RESOURCE_LIMIT_EXCEEDED/);
    assert.match(text, /HTTP 429/);
    assert.match(text, /http\.maxSseStreamsPerPrincipal/);
    assert.deepEqual(streamRequests, [429]);
    assert.equal(await page.locator('#stream-state').textContent(), 'reconnecting…');

    // Nothing asked before the Retry-After: 6 s on (the page's clock also runs on by itself), when
    // a backoff of its own from 0.5 s would have asked three more times.
    assert.ok(STREAM_CAP_RETRY_AFTER_SECONDS * 1000 >= 6_000 + 3_000);
    await page.clock.runFor(6_000);
    assert.deepEqual(streamRequests, [429], 'no stream asked for before the Retry-After');

    // The other stream closed: the next try opens the page's, and the refusal goes.
    other.abort();
    await page.clock.runFor(STREAM_CAP_RETRY_AFTER_SECONDS * 1000 - 6_000 + 1_000);
    await page.locator('#stream-state', { hasText: 'live' }).waitFor();
    await refusal.waitFor({ state: 'detached' });
    assert.equal(streamRequests.length, 2);
    assert.equal(streamRequests[1], 200);

    await requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
    await page.locator('#stream-state', { hasText: 'ended' }).waitFor();
    // The browser logs the refused stream's 429; nothing else may appear.
    assert.deepEqual(
      problems.messages.filter((line) => !/status of 429 \(Too Many Requests\)/.test(line)),
      [],
    );
  });
});
