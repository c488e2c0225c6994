// A session's event stream cut more than once, in real Chromium against the real server behind a
// TCP relay the test cuts: once a stream has opened again, its next drop is retried after the first
// wait, not after the waits grown by the failed tries before it opened. The page's clock is
// Playwright's fake one, paused and moved by the test.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Page } from 'playwright-core';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';
import { startTcpRelay, type TcpRelay } from '../fixtures/tcp-relay.ts';
import { waitFor } from '../fixtures/wait-for.ts';

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
    const isStream = (url: string) => new URL(url).pathname.endsWith('/events');
    page.on('request', (request) => {
      if (!isStream(request.url())) return;
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
