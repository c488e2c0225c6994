// Three groups of the console's tests of a session's event stream, each with its own server and
// Chromium as before, in one file so that the app's and Chromium's modules are loaded once.
//
// A session's event stream cut more than once, in real Chromium against the real server behind a
// TCP relay the test cuts: once a stream has opened again, its next drop is retried after the first
// wait, not after the waits grown by the failed tries before it opened. The page's clock is
// Playwright's fake one, paused and moved by the test.
//
// A session's event stream refused with 429 and a Retry-After (the caller's open streams at
// http.maxSseStreamsPerPrincipal, e.g. many session tabs): in real Chromium against the real server,
// the page says why beside the stream's state, asks again only after the Retry-After, and once the
// stream opens the message goes. The page's clock is Playwright's fake one, moved by the test.
//
// A session's event stream refused with 429 again and again (the caller's streams at
// http.maxSseStreamsPerPrincipal while another tab holds the only one): in real Chromium against the
// real server, with the page's clock moved by the test, the refusal is announced as an alert once,
// not again with each refused try; it stays shown until the stream opens.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Page, Request } from 'playwright-core';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { countAlertsShown } from '../fixtures/console-page-counts.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';
import { startTcpRelay, type TcpRelay } from '../fixtures/tcp-relay.ts';
import { waitFor } from '../fixtures/wait-for.ts';

/**
 * Whether `request` asks for a session's event stream (SSE), not for a JSON page of its events,
 * which a page may read too.
 */
function isEventStream(request: Request): boolean {
  return (
    new URL(request.url()).pathname.endsWith('/events') && request.headers().accept === 'text/event-stream'
  );
}

/**
 * Past the page's first wait (0.5 s), well short of what three refused tries grow the wait to
 * (0.5, 1 and 2 s, then 4 s).
 */
const FIRST_WAIT_AND_SOME_MS = 1_000;

describe('console: a session stream cut again after it reopened', { timeout: 120_000 }, () => {
  const cleanups: Array<() => unknown> = [];
  let server: TestServer;
  let relay: TcpRelay;
  let origin: string;
  let page: Page;
  let problems: PageProblems;
  /** The page's stream requests, in order: `sent`, then `answered <status>` or `failed`. */
  const streams: string[] = [];

  before(async () => {
    // Workers off: the session stays pending, its stream open until the test cuts it.
    server = await startTestServer({ config: { workers: { concurrency: 0 } } });
    cleanups.push(() => server.close());
    relay = await startTcpRelay({ host: '127.0.0.1', port: Number(new URL(server.url).port) });
    cleanups.push(() => relay.cut());
    origin = `http://127.0.0.1:${relay.port}`;
    const browser = await launchTestBrowser({ after: (fn: () => unknown) => cleanups.push(fn) });
    ({ page, problems } = await browser.openPage());
    const streamIndex = new Map<object, number>();
    page.on('request', (request) => {
      if (!isEventStream(request)) return;
      streamIndex.set(request, streams.length);
      streams.push('sent');
    });
    page.on('response', (response) => {
      const index = streamIndex.get(response.request());
      if (index !== undefined) streams[index] = `answered ${response.status()}`;
    });
    page.on('requestfailed', (request) => {
      const index = streamIndex.get(request);
      // A stream cut after its answer stays `answered`: the page saw it open.
      if (index !== undefined && streams[index] === 'sent') streams[index] = 'failed';
    });
    await page.clock.install();
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** Moves the page's clock on, a quarter second at a time, until `done()` (at most `limitMs`). */
  async function runUntil(done: () => boolean, limitMs: number, what: string): Promise<void> {
    for (let moved = 0; !done(); moved += 250) {
      assert.ok(moved < limitMs, `${what} within ${limitMs} ms of the page's clock: ${streams.join(', ')}`);
      await page.clock.runFor(250);
      // The page's tries are real requests: their answers arrive in real time, between the steps.
      await sleep(25);
    }
  }

  test('the drop of a stream that had opened again is retried after the first wait', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Cut streams', agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
    });
    assert.equal(created.status, 201);
    // Ended at the end, failed or not: its stream closes, and the server stops without waiting on it.
    cleanups.push(() =>
      requestJson(`${server.url}/v1/sessions/${created.body.id}/cancel`, { method: 'POST' }).catch(
        () => undefined,
      ),
    );
    await page.goto(`${origin}/console/#/sessions/${created.body.id}`);
    const state = page.locator('#stream-state');
    await state.filter({ hasText: 'live' }).waitFor();
    await page.clock.pauseAt((await page.evaluate(() => Date.now())) + 1_000);

    // Cut while MAOS is out of reach for three tries: each waits twice as long as the one before.
    await relay.cut();
    await state.filter({ hasText: 'reconnecting' }).waitFor();
    await runUntil(
      () => streams.filter((entry) => entry === 'failed').length >= 3,
      20_000,
      'three refused tries',
    );
    // Back: the next try opens the stream again.
    await relay.restore();
    await runUntil(
      () => streams.at(-1) === 'answered 200' && streams.length >= 5,
      20_000,
      'the stream reopened',
    );
    await state.filter({ hasText: 'live' }).waitFor();

    // Cut again, MAOS back at once: the next try comes after the first wait, as after the first cut.
    const tries = streams.length;
    await relay.cut();
    await state.filter({ hasText: 'reconnecting' }).waitFor();
    await relay.restore();
    await page.clock.runFor(FIRST_WAIT_AND_SOME_MS);
    // Nothing moves the paused clock on now: a longer wait would never end.
    await waitFor(() => streams.length > tries, 10_000, `a try after the first wait: ${streams.join(', ')}`);
    await state.filter({ hasText: 'live' }).waitFor();
    assert.deepEqual(
      problems.messages.filter(
        (line) => !/ERR_INCOMPLETE_CHUNKED_ENCODING|ERR_CONNECTION_REFUSED/.test(line),
      ),
      [],
    );
  });
});

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
      if (isEventStream(request)) streamRequests.push(0);
    });
    page.on('response', (response) => {
      if (!isEventStream(response.request())) return;
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
      if (isEventStream(response.request())) streamAnswers.push(response.status());
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
    const alertsShown = await countAlertsShown(page);
    for (const count of [2, 3]) {
      await page.clock.runFor(STREAM_CAP_RETRY_AFTER_SECONDS * 1000 + 1_000);
      await answers(count);
    }
    assert.deepEqual(streamAnswers, [429, 429, 429]);
    const shown = page.locator('#stream-problem .problem');
    assert.match((await shown.textContent()) ?? '', /RESOURCE_LIMIT_EXCEEDED/);
    assert.equal(await alertsShown(), 0, 'the refusals after the first are not announced again');

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
