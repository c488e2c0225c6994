// An action refused with 429 and a Retry-After (the caller's rate limit), in real Chromium against
// the real server: the refusal says when to try again, not only "retry later".
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';

describe('console: an action refused by the rate limit', { timeout: 120_000 }, () => {
  const cleanups: Array<() => unknown> = [];
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;

  before(async () => {
    // Workers off: the session stays running. A window long enough that the test never sees it end.
    server = await startTestServer({
      config: {
        workers: { concurrency: 0 },
        rateLimit: {
          enabled: true,
          principal: { points: 40, windowSeconds: 3600 },
          tenant: { points: 40, windowSeconds: 3600 },
          anonymous: { points: 40, windowSeconds: 3600 },
        },
      },
    });
    cleanups.push(() => server.close());
    const browser = await launchTestBrowser({ after: (fn: () => unknown) => cleanups.push(fn) });
    ({ page, problems } = await browser.openPage());
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('the 429 of an action says when to try again', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Rate limited', agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
    });
    assert.equal(created.status, 201);
    const id = created.body.id;
    await page.goto(`${server.url}/console/#/sessions/${id}`);
    await page.locator('#session-facts .badge[title="running"]').waitFor();
    await page.locator('#stream-state', { hasText: 'live' }).waitFor();

    // The rest of the window's requests spent elsewhere (the same caller: auth mode none).
    let retryAfter: string | null = null;
    for (let i = 0; i < 50 && retryAfter === null; i += 1) {
      const response = await fetch(`${server.url}/v1/sessions/${id}`);
      await response.body?.cancel();
      if (response.status === 429) retryAfter = response.headers.get('retry-after');
    }
    assert.match(retryAfter ?? '', /^\d+$/, 'refused with a Retry-After in seconds');

    await page.getByLabel('Message to the orchestrator').fill('steer');
    await page.getByRole('button', { name: 'Send message' }).click();
    const refusal = page.locator('#steer-output [role=alert]');
    await refusal.waitFor();
    const text = (await refusal.textContent()) ?? '';
    assert.match(text, /RATE_LIMITED/);
    assert.match(text, /HTTP 429/);
    // An hour's window: the time it ends, in the page's own words (read a little earlier than now).
    const times = await page.evaluate(
      (seconds) =>
        [0, 10].map((earlier) =>
          new Date(Date.now() + (seconds - earlier) * 1000).toLocaleTimeString([], {
            hour: '2-digit',
            minute: '2-digit',
          }),
        ),
      Number(retryAfter),
    );
    assert.ok(
      times.some((at) => text.includes(`Try again after ${at}.`)),
      `${text} (expected one of ${times})`,
    );
    assert.deepEqual(
      problems.messages.filter((line) => !/status of 429 \(Too Many Requests\)/.test(line)),
      [],
    );
  });
});
